"""amr.pki: the local CA and the gateway's server certificate."""

from amr.pki.local_ca import ensure_pki, issue_server_certificate, server_certificate_sans

__all__ = ["ensure_pki", "issue_server_certificate", "server_certificate_sans"]
