"""AMR_HOME: creating it on first start and reading the secrets it keeps.

Layout (DESIGN.md, State on disk): mode 0700 for the home and its directories, 0600 for every file
that holds a secret. Secrets never leave AMR_HOME and are never logged.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from amr.errors import ConfigError
from amr.settings import Settings


@dataclass(frozen=True)
class Identity:
    """The local subscription, tenant and admin principal (credentials.json)."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str


def write_private(path: Path, data: bytes | str) -> None:
    """Write a file atomically with mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_home(settings: Settings) -> Identity:
    """Create AMR_HOME and its secrets if missing; return the identity. Idempotent."""
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(home, 0o700)
        for d in (settings.secrets_dir, settings.nodes_dir, settings.run_dir, settings.logs_dir,
                  settings.routes_file.parent, settings.supervisor_dir):  # fmt: skip
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise ConfigError(f"cannot create AMR_HOME at {home}: {e}") from e
    _check_socket_paths(settings)
    # An older amr ran Sentinel, whose sentinel.conf held the internal admin password in clear.
    shutil.rmtree(settings.sentinel_dir, ignore_errors=True)
    identity = _ensure_credentials(settings)
    for name in ("admin.secret", "ha.secret", "gateway.secret", "token.key"):
        path = settings.secrets_dir / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(32))
    return identity


def _check_socket_paths(settings: Settings) -> None:
    # Unix socket paths are limited to 107 bytes; node sockets are run/<node>.sock.
    longest = len(str(settings.run_dir / "dxxxxxxxx-0-0.sock"))
    if longest > 100:
        raise ConfigError(
            f"AMR_HOME {settings.home} is too long for unix socket paths ({longest} > 100 bytes); "
            "use a shorter --home."
        )


def _ensure_credentials(settings: Settings) -> Identity:
    path = settings.credentials_file
    if path.exists():
        data = read_credentials(settings)
    else:
        data = {
            "tenantId": str(uuid.uuid4()),
            "subscriptionId": str(uuid.uuid4()),
            "clientId": "amr-admin-" + secrets.token_hex(4),
            "clientSecret": secrets.token_urlsafe(32),
        }
    # The endpoint and CA follow the current settings (the API port may change between starts).
    data["managementEndpoint"] = settings.api_url
    ca = settings.client_ca_file
    data["caFile"] = str(ca) if ca else ""
    write_private(path, json.dumps(data, indent=2) + "\n")
    return Identity(data["tenantId"], data["subscriptionId"], data["clientId"], data["clientSecret"])


def read_credentials(settings: Settings) -> dict[str, str]:
    try:
        data = json.loads(settings.credentials_file.read_text())
    except FileNotFoundError as e:
        raise ConfigError(
            f"amr is not set up in {settings.home}: run 'amr serve --detach' (or 'make run') first."
        ) from e
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {settings.credentials_file}: {e}") from e
    return dict(data)


def read_identity(settings: Settings) -> Identity:
    data = read_credentials(settings)
    return Identity(data["tenantId"], data["subscriptionId"], data["clientId"], data["clientSecret"])


def read_secret(settings: Settings, name: str) -> str:
    try:
        return (settings.secrets_dir / name).read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the secret {name} in {settings.secrets_dir}: {e}") from e
