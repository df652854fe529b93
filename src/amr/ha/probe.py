"""One node as the `amr ha` coordinator sees it: a persistent connection over the node's unix socket
(amr.nodes.engine_client), authenticated as amr's failover user (amr-ha), that asks PING and INFO
replication in one round trip.

Every probe is bounded by a timeout, so a hung node (stopped, swapping, stuck in a system call) counts
as not answering instead of holding the coordinator up. Any reply counts as an answer, errors
included: a node loading its dataset answers LOADING and is alive. A connection that failed or timed
out is closed (its stream is in an unknown state) and opened again by the next probe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from amr.errors import EngineError, EngineLoadingError, EngineUnreachable, NodeError
from amr.logic.engine_codec import is_error_reply
from amr.logic.replication import ReplicationView, parse_replication_view
from amr.nodes.engine_client import EngineConnection


@dataclass(frozen=True)
class ProbeResult:
    """One probe: whether the node answered, and its replication view when INFO answered."""

    answered: bool
    view: ReplicationView | None = None
    error: str = ""
    gone: bool = False  # nothing listens on the socket: the node's process is not running


class NodeConnection:
    """A persistent connection to one node's unix socket as `amr-ha`."""

    def __init__(self, socket: str, user: str, password: str, timeout: float) -> None:
        self.socket = socket
        self._user = user
        self._password = password
        self._timeout = timeout
        self._connection: EngineConnection | None = None

    def __repr__(self) -> str:
        return f"NodeConnection({self.socket!r})"

    async def _connect(self) -> EngineConnection:
        if self._connection is None:
            self._connection = await EngineConnection.open(self.socket, self._user, self._password)
        return self._connection

    async def probe(self) -> ProbeResult:
        """Ask PING and INFO replication; never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._connect()
                _, info = await connection.send([("PING",), ("INFO", "replication")])
        except EngineLoadingError:
            return ProbeResult(True, None)  # alive, loading its dataset: its role is unknown
        except EngineError as e:
            # Answered, so alive; but without AUTH nothing else will work on this connection.
            return ProbeResult(True, None, f"node at {self.socket} refused AUTH: {e.code}")
        except EngineUnreachable as e:
            await self.close()
            cause = e.__cause__ or e
            return ProbeResult(False, None, type(cause).__name__, gone=e.gone)
        except TimeoutError as e:
            await self.close()
            return ProbeResult(False, None, type(e).__name__)
        if is_error_reply(info) or not isinstance(info, bytes):
            return ProbeResult(True, None)  # alive, but busy or loading: its role is unknown
        return ProbeResult(True, parse_replication_view(info.decode(errors="replace")))

    async def execute(self, *args: str) -> object:
        """Run one command; raise NodeError if it fails, times out or the node answers an error."""
        try:
            async with asyncio.timeout(self._timeout * 3):
                connection = await self._connect()
                return await connection.execute(*args)
        except EngineUnreachable:
            await self.close()
            raise
        except TimeoutError as e:
            await self.close()
            raise NodeError(f"node at {self.socket}: {args[0]} failed: {type(e).__name__}") from e

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort()
