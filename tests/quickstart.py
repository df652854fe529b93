"""The README's quick start as a script: test_quickstart runs it, test_docs checks the README shows it."""

from __future__ import annotations

QUICKSTART = """
set -euo pipefail
amr group create -n rg-amr-lab -l eastus
amr redisenterprise create --cluster-name amr-lab -g rg-amr-lab -l eastus --sku Balanced_B0 \\
    --access-keys-authentication Enabled
amr redisenterprise database list-keys --cluster-name amr-lab -g rg-amr-lab
eval "$(amr redisenterprise database show-connection --cluster-name amr-lab -g rg-amr-lab --format env)"
python examples/quickstart.py
"""
