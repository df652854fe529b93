"""The brute-force table all gateway workers share: one small file under AMR_HOME/gateway, mapped
into every worker.

Why a mapped file: with ``gateway.workers`` > 1 the kernel spreads connections over processes that
share nothing, so a per-process count lets an attacker multiply the failure limit by the number of
workers. A mapped file needs no extra service or socket, is bounded (``table_size(DEFAULT_SLOTS)``,
about 640 KiB, fixed when created), costs no system call to check a source at accept (a read of
shared memory) and one ``flock`` pair per failure, and survives a worker's restart: the restarted
worker maps the same table, and a worker that dies holding the lock releases it with its descriptor.
A table that is missing, truncated, or of another layout is rewritten empty (with a new hash key)
under the lock. If the file cannot be used at all, the worker counts on its own and says so.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import secrets
from pathlib import Path

from amr.logic.security.bruteforce import (
    DEFAULT_SLOTS,
    AuthFailureGuard,
    init_table,
    table_size,
    validate_table,
)
from amr.settings import GatewaySettings

log = logging.getLogger(__name__)

GUARD_FILE = "auth-failures.bin"


class SharedAuthFailureGuard(AuthFailureGuard):
    """An ``AuthFailureGuard`` over a table mapped from a file, counting under an exclusive
    ``flock`` so concurrent failures from several workers all count."""

    def __init__(self, limit: int, window: float, cooldown: float, fd: int, mapped: mmap.mmap) -> None:
        self._fd = fd
        self._map = mapped
        self._view = memoryview(mapped)
        super().__init__(limit, window, cooldown, self._view)

    def record_failure(self, source: str, now: float) -> bool:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            return super().record_failure(source, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap the table (a late failure is then not counted; a check finds nothing blocked)."""
        self.limit = 0
        self._buf = bytearray(table_size(0))
        self._view.release()
        self._map.close()
        os.close(self._fd)


def open_shared_guard(path: Path, settings: GatewaySettings, slots: int = DEFAULT_SLOTS) -> AuthFailureGuard:
    """The brute-force guard of this worker: the table at ``path`` shared with the other workers,
    created (or rewritten, if unusable) as needed; a private table if the file cannot be used."""
    limit, window, cooldown = (
        settings.auth_failure_limit,
        settings.auth_failure_window,
        settings.auth_cooldown,
    )
    size = table_size(slots)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        log.warning("cannot open %s (%s): this gateway worker counts failed AUTHs on its own", path, e)
        return AuthFailureGuard(limit, window, cooldown, slots=slots)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
            mapped = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            view = memoryview(mapped)
            if not validate_table(view, slots):
                init_table(view, secrets.token_bytes(16), slots)
            view.release()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        os.close(fd)
        log.warning("cannot map %s (%s): this gateway worker counts failed AUTHs on its own", path, e)
        return AuthFailureGuard(limit, window, cooldown, slots=slots)
    return SharedAuthFailureGuard(limit, window, cooldown, fd, mapped)
