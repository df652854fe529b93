"""The README's quick start with the Azure CLI as a script: test_az_cli runs it, test_docs checks the
README shows it."""

from __future__ import annotations

AZ_QUICKSTART = """
set -euo pipefail
eval "$(amr az-setup)"
az group create -n rg-amr-lab -l "East US"
az redisenterprise create --cluster-name amr-lab -g rg-amr-lab -l "East US" --sku Balanced_B0 \\
    --access-keys-authentication Enabled --public-network-access Enabled
az redisenterprise database list-keys --cluster-name amr-lab -g rg-amr-lab
"""
