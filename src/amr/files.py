"""Replacing a file atomically: the one way amr writes a file that a reader, or a crash, must never
see half written (routes, node configs, credentials, keys and certificates).

It sits below every layer that writes files (home, nodes, pki), which are independent of each other.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data``. The temporary file beside it is private (0600) from its first
    byte, so a key is never readable by others, and gets ``mode`` only once written. ``durable``: on
    disk (fsync) before it replaces the old file, so a crash leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
