"""One node as the `amr ha` coordinator sees it: a persistent connection over the node's unix socket,
authenticated as amr's failover user (amr-ha), that asks PING and INFO replication in one round trip.

Every probe is bounded by a timeout, so a hung node (stopped, swapping, stuck in a system call) counts
as not answering instead of holding the coordinator up. Any reply counts as an answer, errors
included: a node loading its dataset answers LOADING and is alive. A connection that failed or timed
out is closed (its stream is in an unknown state) and opened again by the next probe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from amr.errors import NodeError
from amr.logic.replication import ReplicationView, parse_replication_view
from amr.nodes.resp import RespError, encode_command, read_reply


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
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            return self._reader, self._writer
        reader, writer = await asyncio.open_unix_connection(self.socket)
        self._reader, self._writer = reader, writer
        if self._password:
            writer.write(encode_command("AUTH", self._user, self._password))
            reply = await read_reply(reader)
            if isinstance(reply, RespError) and not reply.startswith("LOADING"):
                # Answered, so alive; but without AUTH nothing else will work on this connection.
                await self.close()
                raise NodeError(f"node at {self.socket} refused AUTH: {reply.split(' ', 1)[0]}")
        return reader, writer

    async def probe(self) -> ProbeResult:
        """Ask PING and INFO replication; never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await self._connect()
                writer.write(encode_command("PING") + encode_command("INFO", "replication"))
                await read_reply(reader)
                info = await read_reply(reader)
        except NodeError as e:
            return ProbeResult(True, None, str(e))
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:  # fmt: skip
            await self.close()
            gone = isinstance(e, ConnectionRefusedError | FileNotFoundError)
            return ProbeResult(False, None, type(e).__name__, gone=gone)
        if isinstance(info, RespError) or not isinstance(info, bytes):
            return ProbeResult(True, None)  # alive, but busy or loading: its role is unknown
        return ProbeResult(True, parse_replication_view(info.decode(errors="replace")))

    async def execute(self, *args: str) -> object:
        """Run one command; raise NodeError if it fails, times out or the node answers an error."""
        try:
            async with asyncio.timeout(self._timeout * 3):
                reader, writer = await self._connect()
                writer.write(encode_command(*args))
                reply = await read_reply(reader)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:  # fmt: skip
            await self.close()
            raise NodeError(f"node at {self.socket}: {args[0]} failed: {type(e).__name__}") from e
        if isinstance(reply, RespError):
            raise NodeError(f"node at {self.socket}: {' '.join(args)} failed: {reply}")
        return reply

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            # Abort, not close: a hung node reads nothing, and a graceful close would wait for it.
            writer.transport.abort()
