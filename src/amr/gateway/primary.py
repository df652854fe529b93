"""Following a database's primary: the gateway asks each candidate node for its ROLE and moves the
endpoint when another node becomes primary (a failover), without waiting for the control plane.

One small persistent connection per candidate, authenticated as the internal ``amr-gateway`` user
(which may run ROLE and PING and nothing else). The decision is ``amr.logic.gateway_primary``'s; this
module only asks and reports. It never runs on the splice path: a slow or dead node only delays its
own poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from amr.logic.gateway_primary import RoleAnswer, choose_primary, parse_role_reply
from amr.logic.node_credentials import GATEWAY_USER
from amr.nodes.resp import RespError, encode_command, read_reply

log = logging.getLogger(__name__)

# A node that has not answered ROLE within this many poll intervals counts as not answering.
ANSWER_TIMEOUT_INTERVALS = 10
MIN_ANSWER_TIMEOUT = 0.5


class _ReplyError(Exception):
    """The node answered with a RESP error."""


async def _answer(reader: asyncio.StreamReader) -> object:
    """The node's next reply; raise _ReplyError (with the error's code) for an error reply."""
    reply = await read_reply(reader)
    if isinstance(reply, RespError):
        raise _ReplyError(reply.split(" ", 1)[0])
    return reply


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
        role = encode_command("ROLE")
        while True:
            writer: asyncio.StreamWriter | None = None
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation
                # that stops this tracker when the inner call finishes at the same moment (likely
                # right after a failover), and a listener being removed then waits for it forever.
                async with asyncio.timeout(timeout):
                    reader, conn = await asyncio.open_unix_connection(candidate)
                writer = conn
                if self.password:
                    conn.write(encode_command("AUTH", GATEWAY_USER, self.password))
                    async with asyncio.timeout(timeout):
                        await _answer(reader)
                while True:
                    conn.write(role)
                    async with asyncio.timeout(timeout):
                        reply = await _answer(reader)
                    self._record(candidate, parse_role_reply(reply))
                    if self._errors.pop(candidate, None) is not None:
                        log.info("node %s answers ROLE again", candidate)
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                EOFError,
                TimeoutError,
                asyncio.IncompleteReadError,
                ValueError,
                _ReplyError,
            ) as e:
                self._record(candidate, None)
                message = str(e) if isinstance(e, _ReplyError) else type(e).__name__
                if self._errors.get(candidate) != message:
                    log.warning("cannot ask %s for its role: %s", candidate, message)
                self._errors[candidate] = message
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.interval)
