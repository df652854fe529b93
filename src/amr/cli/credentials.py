"""Where the CLI finds the API and how it trusts it: the local admin principal and the amr CA."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amr.cli.errors import CliError


@dataclass(frozen=True)
class Credentials:
    """The local admin principal written by ``amr serve`` to AMR_HOME/credentials.json."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    management_endpoint: str
    ca_file: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credentials:
        return cls(
            tenant_id=str(data["tenantId"]),
            subscription_id=str(data["subscriptionId"]),
            client_id=str(data["clientId"]),
            client_secret=str(data["clientSecret"]),
            management_endpoint=str(data["managementEndpoint"]).rstrip("/"),
            ca_file=str(data.get("caFile") or ""),
        )


def load_credentials(credentials_file: Path, home: Path) -> Credentials:
    """Read credentials.json, or explain how to create it."""
    try:
        raw = credentials_file.read_text()
    except FileNotFoundError as e:
        raise CliError(f"amr is not set up in {home}: run 'amr serve --detach' (or 'make run') first.") from e
    except OSError as e:
        raise CliError(f"cannot read {credentials_file}: {e.strerror or e}") from e
    try:
        return Credentials.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(
            f"{credentials_file} is not valid amr credentials ({e}); "
            "remove it and run 'amr serve --detach' (or 'make run') again."
        ) from e


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """A TLS context that trusts the amr CA in ``ca_file``, or a CliError saying how to create it."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise CliError(
            f"cannot load the amr CA certificate {ca_file}: {getattr(e, 'strerror', None) or e}. "
            "Run 'amr serve --detach' (or 'make run') to create it."
        ) from e
