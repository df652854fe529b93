"""Stopping what a killed supervisord left running, before a new one starts.

When supervisord dies by SIGKILL (or the OOM killer), its children live on: the api holds the API
port, the gateway the database ports, and every node its port and unix socket, so the new programs
would fail with "address in use" (or, for the gateway's SO_REUSEPORT ports, share them with a stale
process). They are found in /proc (Linux) and stopped with SIGTERM, so nodes write their AOF or
snapshot as on a clean stop, then SIGKILL after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from amr.logic.operations.recovery import ProcessFacts, choose_orphan_processes
from amr.settings import Settings

log = logging.getLogger(__name__)

GRACE_SECONDS = 15.0


def list_processes(proc: Path = Path("/proc")) -> list[ProcessFacts]:
    """Every process of this user that /proc shows (empty where there is no /proc)."""
    out = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            argv = tuple(
                a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a
            )
            cwd = os.readlink(entry / "cwd")
            exe = os.readlink(entry / "exe")
        except OSError:
            continue  # gone meanwhile, a kernel thread, or another user's
        out.append(ProcessFacts(int(entry.name), argv, cwd, exe.removesuffix(" (deleted)")))
    return out


def pid_alive(pid: int) -> bool:
    """Whether a process exists and has not exited; a zombie (exited, not yet reaped) is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_orphan_processes(
    settings: Settings, supervisord_conf: Path, grace: float = GRACE_SECONDS
) -> list[int]:
    """Stop the leftovers of this AMR_HOME's previous run (call only when no supervisord answers for
    it); return their pids. Nodes get SIGTERM first, so they save as on a clean stop."""
    me = os.getpid()
    processes = [p for p in list_processes() if p.pid != me]
    pids = choose_orphan_processes(
        processes,
        str(settings.home.absolute()),
        str(settings.nodes_dir.absolute()),
        str(supervisord_conf.absolute()),
        str(settings.sentinel_dir.absolute()),
    )
    if not pids:
        return []
    log.warning(
        "stopping %d processes left over from a previous run of %s: %s", len(pids), settings.home, pids
    )
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    stubborn = [p for p in pids if pid_alive(p)]
    if stubborn:
        log.warning("killing leftover processes that did not stop within %g s: %s", grace, stubborn)
        _signal(stubborn, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(pid_alive(p) for p in stubborn):
            time.sleep(0.02)
    return pids
