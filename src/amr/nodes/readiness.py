"""Whether a local node has come up: polling it with PING as the admin user, watching its process
under supervisord meanwhile, and, when it has died or the deadline passes, saying why in the engine's
own words (the lines of its log that explain the failure).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import Any

from amr.errors import EngineUnreachable, NodeError
from amr.logic.resp.engine_codec import is_error_reply, redact
from amr.logic.security.node_credentials import ADMIN_USER, CredentialMasters
from amr.model.node import NodeSpec
from amr.nodes.engine_client import EngineConnection
from amr.nodes.supervisor import SupervisorClient

log = logging.getLogger(__name__)

# Supervisor states in which a node that should be serving is not going to answer.
_DEAD_STATES = frozenset({"FATAL", "EXITED", "BACKOFF", "STOPPED"})

_POLL_INTERVAL = 0.01
# A fresh valkey-server answers within a few ms of its spawn: poll finer at first.
_FAST_POLL_INTERVAL = 0.002
_FAST_POLL_PERIOD = 0.1
# Checking the supervisor costs an XML-RPC round trip; PING is much cheaper, so check it less often.
_STATE_CHECK_INTERVAL = 0.05
_PING_TIMEOUT = 1.0


class ReadinessProbe:
    """Waits for local nodes to answer PING as their admin user, or raises NodeError saying why not."""

    def __init__(self, supervisor: SupervisorClient, masters: CredentialMasters) -> None:
        self._supervisor = supervisor
        self._masters = masters

    async def wait_ready(self, spec: NodeSpec, program: str, log_file: Path, timeout: float) -> None:
        """Poll until the node answers PING as the admin user; raise NodeError with the engine's reason
        (the tail of ``log_file``) if its supervisor ``program`` dies or the deadline passes."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        # The first check waits a little: a fresh node usually answers before an XML-RPC round trip.
        next_state_check = start + _STATE_CHECK_INTERVAL / 2
        last_error = "not started"
        first_pid = 0
        while True:
            last_error = await self._ping(spec)
            if not last_error:
                log.debug("node %s ready after %.1f ms", spec.name, (loop.time() - start) * 1000)
                return
            now = loop.time()
            if now >= next_state_check or now >= deadline:
                next_state_check = now + _STATE_CHECK_INTERVAL
                info = await self._supervisor.get_process_info(program)
                state = "ABSENT" if info is None else str(info["statename"])
                pid = int(info.get("pid") or 0) if info is not None else 0
                first_pid = first_pid or pid
                if pid and pid != first_pid:
                    # The process died and the supervisor already started it again (it restarts a
                    # crashing node at once), so the dead state itself may never be seen.
                    state = "EXITED"
                if state in _DEAD_STATES or state == "ABSENT":
                    # It may have become ready between the PING and the state check.
                    if state not in ("ABSENT", "STOPPED") and not await self._ping(spec):
                        return
                    raise NodeError(_failure_message(spec, state, info, last_error, log_file))
                if now >= deadline:
                    raise NodeError(
                        _failure_message(spec, state, info, last_error, log_file, timed_out=timeout)
                    )
            fast = loop.time() - start < _FAST_POLL_PERIOD
            await asyncio.sleep(_FAST_POLL_INTERVAL if fast else _POLL_INTERVAL)

    async def _ping(self, spec: NodeSpec) -> str:
        """AUTH as the admin user and PING; "" when the node answers PONG, else why not (yet).

        A rejected password raises NodeError at once: waiting would not change it."""
        try:
            return await asyncio.wait_for(self._ping_once(spec), _PING_TIMEOUT)
        except TimeoutError:
            return "PING timed out"
        except EngineUnreachable as e:
            cause = e.__cause__ or e
            return f"{type(cause).__name__}: {cause}"

    async def _ping_once(self, spec: NodeSpec) -> str:
        connection = await EngineConnection.open(spec.socket, decode=True)
        try:
            auth: object = ""
            pong: object = ""
            # The node's own password, or (a node an older amr started) the master itself, which
            # was every node's admin password then; convergence replaces it.
            for password in (self._masters.admin_for(spec.database_uid), self._masters.admin):
                auth, pong = await connection.send([("AUTH", ADMIN_USER, password), ("PING",)])
                if not is_error_reply(auth):
                    break
        finally:
            connection.close()
        if is_error_reply(auth) and str(auth).startswith(("WRONGPASS", "NOPERM")):
            raise NodeError(f"node {spec.name} rejected the admin user: {redact(str(auth))}")
        if is_error_reply(auth) or auth != "OK":
            return f"AUTH answered {redact(_reply_line(auth))!r}"
        if is_error_reply(pong) or pong != "PONG":
            return f"PING answered {redact(_reply_line(pong))!r}"
        return ""


def _failure_message(
    spec: NodeSpec,
    state: str,
    info: dict[str, Any] | None,
    last_error: str,
    log_file: Path,
    timed_out: float | None = None,
) -> str:
    if timed_out is not None:
        head = f"node {spec.name} did not answer PING within {timed_out:g} s (process {state})"
    else:
        head = f"node {spec.name} is not running (process {state})"
    details = []
    if info is not None:
        if info.get("spawnerr"):
            details.append(str(info["spawnerr"]))
        elif state in ("EXITED", "BACKOFF", "FATAL") and info.get("exitstatus") is not None:
            details.append(f"exit status {info['exitstatus']}")
    reason = engine_reason(_read_tail(log_file))
    if reason:
        details.append(f"engine said: {reason}")
    elif last_error:
        details.append(f"last attempt: {last_error}")
    return head + (": " + "; ".join(details) if details else "")


def _reply_line(reply: object) -> str:
    """A short reply as the engine wrote it (``-ERR ...``, ``+OK``), for messages."""
    return f"-{reply}" if is_error_reply(reply) else f"+{reply}"


def _read_tail(path: Path, size: int = 16384) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# Warnings valkey prints at every start on many hosts; they never explain a failure.
_NOISE = ("Memory overcommit must be enabled", "Transparent Huge Pages", "TCP backlog setting")
_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ (?P<level>[.\-*#]) (?P<msg>.*)$")


def engine_reason(log_text: str, max_lines: int = 4) -> str:
    """The lines of a node's log that say why it failed: the FATAL CONFIG FILE ERROR block of the
    last start, or else the warnings ('#') logged since the last start. Passwords are redacted."""
    lines = [ln.rstrip() for ln in log_text.splitlines() if ln.strip()]
    fatal = max((i for i, ln in enumerate(lines) if "FATAL CONFIG FILE ERROR" in ln), default=-1)
    start = max((i for i, ln in enumerate(lines) if "oO0OoO0OoO0Oo" in ln), default=-1)
    if fatal > start:
        block = [ln for ln in lines[fatal + 1 :] if not ln.startswith("***")][:max_lines]
        return redact(" | ".join(block))
    warnings = []
    for ln in lines[start + 1 :] if start >= 0 else lines:
        m = _LOG_LINE.match(ln)
        if m and m.group("level") == "#" and not any(n in ln for n in _NOISE):
            warnings.append(m.group("msg"))
    return redact(" | ".join(warnings[-max_lines:]))
