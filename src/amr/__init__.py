"""amr: a self-hosted managed Redis service speaking Azure Managed Redis' management API."""

__version__ = "0.1.0"
