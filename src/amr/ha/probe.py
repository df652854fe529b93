"""One node as the `amr ha` coordinator sees it: a persistent connection over the node's unix socket,
authenticated as amr's internal admin user, that asks PING and INFO replication in one round trip.

Every probe is bounded by a timeout, so a hung node (stopped, swapping, stuck in a system call) counts
as not answering instead of holding the coordinator up. Any reply counts as an answer, errors
included: a node loading its dataset answers LOADING and is alive. A connection that failed or timed
out is closed (its stream is in an unknown state) and opened again by the next probe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from amr.errors import NodeError
from amr.logic.ha_failover import ReplicationView, parse_replication_view


class _ErrorReply(str):
    """A RESP error reply (``-ERR ...``), kept as a value: an error is still an answer."""


def _command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def _read_reply(reader: asyncio.StreamReader) -> object:
    """One RESP2 reply (what AUTH, PING, INFO and CLUSTER FAILOVER answer)."""
    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode(errors="replace")
    if kind == b"-":
        return _ErrorReply(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [await _read_reply(reader) for _ in range(size)]
    raise ConnectionError("unexpected reply from node")


@dataclass(frozen=True)
class ProbeResult:
    """One probe: whether the node answered, and its replication view when INFO answered."""

    answered: bool
    view: ReplicationView | None = None
    error: str = ""


class NodeConnection:
    """A persistent admin connection to one node's unix socket."""

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
            writer.write(_command("AUTH", self._user, self._password))
            reply = await _read_reply(reader)
            if isinstance(reply, _ErrorReply) and not reply.startswith("LOADING"):
                # Answered, so alive; but without AUTH nothing else will work on this connection.
                await self.close()
                raise NodeError(f"node at {self.socket} refused AUTH: {reply.split(' ', 1)[0]}")
        return reader, writer

    async def probe(self) -> ProbeResult:
        """Ask PING and INFO replication; never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await self._connect()
                writer.write(_command("PING") + _command("INFO", "replication"))
                await _read_reply(reader)
                info = await _read_reply(reader)
        except NodeError as e:
            return ProbeResult(True, None, str(e))
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:  # fmt: skip
            await self.close()
            return ProbeResult(False, None, type(e).__name__)
        if isinstance(info, _ErrorReply) or not isinstance(info, str):
            return ProbeResult(True, None)  # alive, but busy or loading: its role is unknown
        return ProbeResult(True, parse_replication_view(info))

    async def execute(self, *args: str) -> object:
        """Run one command; raise NodeError if it fails, times out or the node answers an error."""
        try:
            async with asyncio.timeout(self._timeout * 3):
                reader, writer = await self._connect()
                writer.write(_command(*args))
                reply = await _read_reply(reader)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as e:  # fmt: skip
            await self.close()
            raise NodeError(f"node at {self.socket}: {args[0]} failed: {type(e).__name__}") from e
        if isinstance(reply, _ErrorReply):
            raise NodeError(f"node at {self.socket}: {' '.join(args)} failed: {reply}")
        return reply

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            # Abort, not close: a hung node reads nothing, and a graceful close would wait for it.
            writer.transport.abort()
