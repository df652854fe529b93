"""The names amr gives the one subscription and tenant it serves, and its cloud, wherever a client
sees them (the API's subscription and tenant objects, the cloud metadata, ``amr account show``)."""

from __future__ import annotations

SUBSCRIPTION_DISPLAY_NAME = "amr local subscription"
TENANT_DISPLAY_NAME = "amr local tenant"
TENANT_DOMAIN = "amr.local"
CLOUD_NAME = "amr"  # the cloud's name in its metadata document and the az cloud `amr az-setup` registers
