"""Pipelines of admin commands over raw unix-socket connections, encoded by hand and parsed by hiredis.

Slot migration sends about ten commands per slot (SETSLOTs on every primary, GETKEYSINSLOT, MIGRATE),
over a hundred thousand for a 1 -> 4 scale-out. Through redis-py's pipeline machinery they cost the
control plane seconds of CPU, on a host whose cores the engines moving the data need; here a command
costs a few microseconds. Connections are pooled so concurrent pipelines each get their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import hiredis

from amr.errors import NodeError
from amr.nodes.resp import encode_command, redact

READ_CHUNK = 1 << 16


class _Connection:
    __slots__ = ("reader", "writer", "parser")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decode: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = hiredis.Reader(encoding="utf-8") if decode else hiredis.Reader()

    async def run(self, payload: bytes, count: int, timeout: float) -> list[object]:
        self.writer.write(payload)
        await self.writer.drain()
        replies: list[object] = []
        parser = self.parser
        while True:
            reply = parser.gets()
            while reply is not False:
                replies.append(reply)
                if len(replies) == count:
                    return replies
                reply = parser.gets()
            async with asyncio.timeout(timeout):
                data = await self.reader.read(READ_CHUNK)
            if not data:
                raise ConnectionResetError("the node closed the connection")
            parser.feed(data)

    def close(self) -> None:
        self.writer.close()


class RawPipelines:
    """Authenticated raw connections to one node's unix socket, one per pipeline in flight."""

    def __init__(self, socket: str, user: str, password: str, timeout: float, decode: bool) -> None:
        self._socket = socket
        self._user = user
        self._password = password
        self._timeout = timeout
        self._decode = decode
        self._idle: list[_Connection] = []

    async def run(self, commands: Sequence[Sequence[str | int | bytes]]) -> list[object]:
        """Send ``commands`` in one write and return their replies in order; raise NodeError if any
        failed (after all of them ran) or the connection broke."""
        if not commands:
            return []
        connection = self._idle.pop() if self._idle else None
        try:
            if connection is None:
                connection = await self._connect()
            payload = b"".join(encode_command(*c) for c in commands)
            replies = await connection.run(payload, len(commands), self._timeout)
        except (OSError, TimeoutError, hiredis.ProtocolError, UnicodeDecodeError) as e:
            if connection is not None:
                connection.close()
            raise NodeError(f"node at {self._socket}: pipeline failed: {type(e).__name__}: {e}") from e
        except BaseException:
            # Cancelled halfway: replies may still be owed on this connection, so it is not reused.
            if connection is not None:
                connection.close()
            raise
        self._idle.append(connection)
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, hiredis.ReplyError):
                text = redact(str(reply))
                text = text.replace(self._password, "[redacted]") if self._password else text
                raise NodeError(f"node at {self._socket}: {_name(command)} pipeline failed: {text}")
        return replies

    async def _connect(self) -> _Connection:
        async with asyncio.timeout(self._timeout):
            reader, writer = await asyncio.open_unix_connection(self._socket, limit=READ_CHUNK)
        connection = _Connection(reader, writer, self._decode)
        try:
            hello = [("AUTH", self._user, self._password), ("CLIENT", "SETNAME", "amr-admin")]
            replies = await connection.run(b"".join(encode_command(*c) for c in hello), 2, self._timeout)
        except BaseException:
            connection.close()
            raise
        if isinstance(replies[0], hiredis.ReplyError):
            connection.close()
            raise NodeError(f"node at {self._socket}: the admin user was refused: {replies[0]}")
        return connection

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _name(command: Sequence[str | int | bytes]) -> str:
    first = command[0] if command else ""
    return first.decode() if isinstance(first, bytes) else str(first)
