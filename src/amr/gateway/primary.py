"""Following a database's primary: the gateway asks each candidate node for its ROLE and moves the
endpoint when another node becomes primary (a failover), without waiting for the control plane.

One small persistent connection per candidate (amr.nodes.engine_client), authenticated as the
internal ``amr-gateway`` user (which may run ROLE and PING and nothing else). The decision is
``amr.logic.gateway_primary``'s; this module only asks and reports. It never runs on the splice path:
a slow or dead node only delays its own poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from amr.errors import EngineError, NodeError
from amr.logic.gateway_primary import RoleAnswer, choose_primary, parse_role_reply
from amr.logic.node_credentials import GATEWAY_USER
from amr.nodes.engine_client import EngineConnection

log = logging.getLogger(__name__)

# A node that has not answered ROLE within this many poll intervals counts as not answering.
ANSWER_TIMEOUT_INTERVALS = 10
MIN_ANSWER_TIMEOUT = 0.5


class PrimaryTracker:
    """Polls ``candidates`` for their ROLE every ``interval`` seconds and keeps ``current`` on the
    primary; calls ``on_change(old, new)`` when it moves."""

    def __init__(
        self,
        candidates: Sequence[str],
        current: str,
        password: str,
        interval: float,
        on_change: Callable[[str, str], None],
    ) -> None:
        self.candidates = tuple(candidates)
        self.current = current
        self.password = password
        self.interval = max(interval, 0.01)
        self.on_change = on_change
        self.answers: dict[str, RoleAnswer | None] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._errors: dict[str, str] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll(c)) for c in self.candidates]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _record(self, candidate: str, answer: RoleAnswer | None) -> None:
        self.answers[candidate] = answer
        chosen = choose_primary(self.candidates, self.answers, self.current)
        if chosen != self.current:
            old, self.current = self.current, chosen
            log.info("primary moved from %s to %s", old, chosen)
            self.on_change(old, chosen)

    async def _poll(self, candidate: str) -> None:
        timeout = max(self.interval * ANSWER_TIMEOUT_INTERVALS, MIN_ANSWER_TIMEOUT)
        while True:
            connection: EngineConnection | None = None
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation
                # that stops this tracker when the inner call finishes at the same moment (likely
                # right after a failover), and a listener being removed then waits for it forever.
                async with asyncio.timeout(timeout):
                    connection = await EngineConnection.open(candidate, GATEWAY_USER, self.password)
                while True:
                    async with asyncio.timeout(timeout):
                        reply = await connection.execute("ROLE")
                    self._record(candidate, parse_role_reply(reply))
                    if self._errors.pop(candidate, None) is not None:
                        log.info("node %s answers ROLE again", candidate)
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except (NodeError, TimeoutError, ValueError) as e:
                self._record(candidate, None)
                message = e.code if isinstance(e, EngineError) else _cause_name(e)
                if self._errors.get(candidate) != message:
                    log.warning("cannot ask %s for its role: %s", candidate, message)
                self._errors[candidate] = message
            finally:
                if connection is not None:
                    connection.close()
            await asyncio.sleep(self.interval)


def _cause_name(e: BaseException) -> str:
    """The name of what went wrong underneath (ConnectionRefusedError, EOFError, TimeoutError)."""
    return type(e.__cause__ or e).__name__
