"""The brute-force table shared by gateway workers (``amr.gateway.guard_table``): one file, mapped
by several processes, counting every failure once."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path

from amr.gateway.guard_table import SharedAuthFailureGuard, open_shared_guard
from amr.logic.security.bruteforce import table_size
from amr.settings import GatewaySettings

SLOTS = 256


def settings(limit: int) -> GatewaySettings:
    return GatewaySettings(auth_failure_limit=limit, auth_failure_window=60, auth_cooldown=60)


def _worker(path: str, limit: int, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    guard = open_shared_guard(Path(path), settings(limit), SLOTS)
    blocked = sum(guard.record_failure("203.0.113.7", time.monotonic()) for _ in range(n))
    out.put(blocked)


def test_failures_from_four_processes_all_count(tmp_path: Path) -> None:
    path = tmp_path / "auth-failures.bin"
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    # 4 x 50 failures against a limit of 200: exactly the last one blocks, whichever worker had it.
    procs = [ctx.Process(target=_worker, args=(str(path), 200, 50, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert sum(results) == 1
    guard = open_shared_guard(path, settings(200), SLOTS)
    assert isinstance(guard, SharedAuthFailureGuard)
    assert guard.is_blocked("203.0.113.7", time.monotonic())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.stat().st_size == table_size(SLOTS)
    guard.close()


def test_a_restarted_worker_keeps_the_counts_and_a_damaged_table_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "auth-failures.bin"
    first = open_shared_guard(path, settings(3), SLOTS)
    now = time.monotonic()
    first.record_failure("198.51.100.1", now)
    first.record_failure("198.51.100.1", now)
    restarted = open_shared_guard(path, settings(3), SLOTS)
    assert restarted.record_failure("198.51.100.1", now)  # the third, counted by another "worker"
    assert first.is_blocked("198.51.100.1", now)
    for g in (first, restarted):
        assert isinstance(g, SharedAuthFailureGuard)
        g.close()
    path.write_bytes(b"garbage")
    fresh = open_shared_guard(path, settings(3), SLOTS)
    assert isinstance(fresh, SharedAuthFailureGuard)
    assert not fresh.is_blocked("198.51.100.1", now)
    assert path.stat().st_size == table_size(SLOTS)
    fresh.close()


def test_an_unusable_path_falls_back_to_counting_alone(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "auth-failures.bin"
    link.symlink_to(target)  # never followed
    guard = open_shared_guard(link, settings(2), SLOTS)
    assert not isinstance(guard, SharedAuthFailureGuard)
    assert not target.exists()
    assert guard.record_failure("x", 0) is False and guard.record_failure("x", 1) is True
