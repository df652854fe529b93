"""The connection audit log: JSON lines, appended with O_APPEND, rotated by size.

Events are buffered and written once per event-loop iteration (one ``os.write`` of whole lines), so a
burst of connections costs one system call per loop turn rather than one per event, and a line is
never split between writes. Payload bytes and passwords never reach this module: callers pass only
addresses, ports, the database id and a fixed reason word.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Flush at once rather than at the end of the loop iteration when this much is buffered.
FLUSH_BYTES = 256 * 1024


def audit_path_for_worker(base: Path, worker: int) -> Path:
    """Worker 0 writes ``connections.jsonl``; worker N writes ``connections-N.jsonl`` next to it."""
    if worker <= 0:
        return base
    return base.with_name(f"{base.stem}-{worker}{base.suffix}")


def format_time(t: float) -> str:
    """ISO 8601 UTC with milliseconds: ``2024-05-01T12:00:00.123Z``."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


class AuditLog:
    """Appends connection events to ``path``; keeps ``backups`` rotated files of ``max_bytes`` each."""

    def __init__(
        self, path: Path, max_bytes: int, backups: int, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.max_bytes = max(max_bytes, 1024)
        self.backups = max(backups, 0)
        self._clock = wall_clock
        self._fd = -1
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flush_scheduled = False
        self._error = ""
        # Per database since this process started: how many of each event, and the sums of the
        # disconnects' byte counts; `amr monitord` asks for them (amr.gateway.client_directory).
        self.totals: dict[str, dict[str, int]] = {}

    def event(
        self,
        event: str,
        database_id: str,
        port: int,
        source: str,
        source_port: int,
        reason: str | None = None,
        **extra: int,
    ) -> None:
        """Record one event (written by the end of this loop iteration)."""
        totals = self.totals.get(database_id)
        if totals is None:
            totals = self.totals[database_id] = {}
        totals[event] = totals.get(event, 0) + 1
        if event == "disconnect":
            for name in ("bytesIn", "bytesOut"):
                totals[name] = totals.get(name, 0) + extra.get(name, 0)
        record: dict[str, object] = {
            "time": format_time(self._clock()),
            "event": event,
            "databaseId": database_id,
            "port": port,
            "source": source,
            "sourcePort": source_port,
        }
        if reason:
            record["reason"] = reason
        record.update(extra)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
                self._flush_scheduled = True
            except RuntimeError:  # no loop: write now
                self.flush()

    def flush(self) -> None:
        """Write everything buffered; on a write error, log once and drop the lines."""
        self._flush_scheduled = False
        lines, self._pending, self._pending_bytes = self._pending, [], 0
        if not lines:
            return
        try:
            self._open()
            chunk: list[bytes] = []
            size = 0
            for line in lines:
                if self._size + size + len(line) > self.max_bytes and (self._size + size) > 0:
                    self._write(b"".join(chunk))
                    chunk, size = [], 0
                    self._rotate()
                chunk.append(line)
                size += len(line)
            self._write(b"".join(chunk))
            self._error = ""
        except OSError as e:
            if str(e) != self._error:
                log.error("cannot write the audit log %s: %s", self.path, e)
            self._error = str(e)
            self._close_fd()

    def _open(self) -> None:
        if self._fd >= 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _write(self, data: bytes) -> None:
        if not data:
            return
        self._open()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._size += n

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups <= 0:
            os.truncate(self.path, 0)
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def close(self) -> None:
        self.flush()
        self._close_fd()
