"""AMR_HOME: creating it on first start, reading the secrets it keeps, following the files the control
plane rewrites in it (``FollowedFile``).

Layout (DESIGN.md, State on disk): mode 0700 for the home and its directories, 0600 for every file
that holds a secret. Secrets never leave AMR_HOME and are never logged.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from amr.errors import ConfigError
from amr.files import write_atomic
from amr.logic.security.path_trust import PathFacts, validate_binary, validate_chain, validate_owned
from amr.settings import Settings


@dataclass(frozen=True)
class Identity:
    """The local subscription, tenant and admin principal (credentials.json)."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str


def write_private(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Write a file atomically with mode 0600 from the first byte (its directory made 0700 if
    missing); ``durable``: on disk (fsync) before it replaces the old one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, data, durable=durable)


def write_reconciler_heartbeat(settings: Settings, passes: int, at: float) -> None:
    """Say that the reconciler of this process completed its ``passes``-th pass at ``at`` (unix time):
    ``{"passes": N, "at": T, "pid": P}`` in ``settings.reconciler_heartbeat_file``, atomically, mode
    0600. The pid tells a restarted control plane's count (from 1 again) from the old one's."""
    text = json.dumps({"passes": passes, "at": at, "pid": os.getpid()}) + "\n"
    # Not synced to disk: only the latest beat matters, and a crash makes it stale anyway.
    write_private(settings.reconciler_heartbeat_file, text, durable=False)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _facts(path: Path) -> PathFacts | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot check {path}: {e}") from e
    return PathFacts(str(path), st.st_uid, st.st_mode, _user_name(st.st_uid))


def _ancestors(path: Path) -> list[PathFacts]:
    """Every directory above ``path`` as written and as resolved, and every symlink on the way."""
    written = path.absolute()
    resolved = path.resolve()
    seen: dict[str, PathFacts] = {}
    for p in (*reversed(written.parents), *reversed(resolved.parents)):
        facts = _facts(p)
        if facts is not None:
            seen.setdefault(facts.path, facts)
    if written != resolved and (link := _facts(written)) is not None:
        seen.setdefault(link.path, link)
    return list(seen.values())


def check_home_trusted(home: Path) -> None:
    """Refuse an AMR_HOME another local user could control, before anything in it is read: the home,
    its secrets, settings and keys must be the running user's and not writable by group or others,
    and no directory above it may let another user replace it (amr.logic.security.path_trust)."""
    me, me_name = os.geteuid(), _user_name(os.geteuid())
    what = f"AMR_HOME {home}"
    problems = validate_chain(_ancestors(home), me, what)
    target = home.resolve()
    inside = (
        (target, "AMR_HOME"),
        (target / "secrets", "the secrets directory"),
        (target / "amr.toml", "the settings file"),
        (target / "credentials.json", "the credentials file"),
        (target / "pki", "the certificate directory"),
    )
    if target.exists():
        for path, name in inside:
            facts = _facts(path)
            problem = facts and validate_owned(facts, me, me_name, name)
            if problem:
                problems.append(problem)
    if problems:
        raise ConfigError(f"amr refuses to use {what}: " + "; ".join(problems) + ".")


def check_binary_trusted(path: Path) -> None:
    """Refuse an engine binary another non-root user could change (it, or a directory above it)."""
    me, me_name = os.geteuid(), _user_name(os.geteuid())
    resolved = path.resolve()
    problems = validate_chain(_ancestors(path), me, f"engine.server_binary {path}")
    facts = _facts(resolved)
    problem = facts and validate_binary(facts, me, me_name)
    if problem:
        problems.append(problem)
    if problems:
        raise ConfigError("amr refuses to run the engine binary: " + "; ".join(problems) + ".")


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
    for name in ("admin.secret", "ha.secret", "gateway.secret", "monitor.secret", "token.key"):
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


@dataclass(frozen=True)
class FileLook:
    """What one look at a followed file found. ``changed``: the file is not as last read; then
    ``text`` is its new contents (None: it is gone) unless ``error`` says why it could not be read.
    An ``error`` without ``changed``: it could not even be looked at (the last contents stand)."""

    changed: bool
    text: str | None = None
    error: str = ""


class FollowedFile:
    """A file another process replaces atomically (routes.json, ha/watch.json), looked at with one
    cheap ``os.stat`` and read again only when its mtime, size or inode changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None | bool = False  # False: never read

    def forget(self) -> None:
        """Read the file again at the next look, changed or not."""
        self._stamp = False

    def look(self) -> FileLook:
        """Whether the file changed since the last look, and its contents if so."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        except OSError as e:
            return FileLook(False, error=str(e))
        if stamp == self._stamp:
            return FileLook(False)
        self._stamp = stamp
        if stamp is None:
            return FileLook(True)
        try:
            return FileLook(True, self.path.read_text())
        except OSError as e:
            # Transient (EMFILE, a race with the writer): read it again at the next look.
            self._stamp = False
            return FileLook(True, error=str(e))
        except UnicodeDecodeError as e:
            return FileLook(True, error=str(e))
