"""amr's one async client of its engine nodes, over their unix sockets: the admin connections, the
`amr ha` probe, the gateway's primary tracker and slot-map reader all talk through it.

``EngineConnection`` is one authenticated connection (AUTH user + password, then commands or pipelines
in one write); ``EnginePool`` keeps idle connections to one node so that concurrent callers each get
their own. The wire format is ``amr.logic.resp.engine_codec``'s. Error replies become the EngineError
subclass their code names (the table is ``engine_codec.ENGINE_ERRORS``). A connection that broke is
closed and raised as EngineUnreachable; one that timed out or was cancelled halfway is closed too (a
reply may still be owed on it, which the next request would take for its own). Passwords never
appear in a message or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from amr.errors import EngineAuthError, EngineError, EngineUnreachable
from amr.logic.resp.engine_codec import (
    Arg,
    Command,
    ReplyProtocolError,
    describe_command,
    encode_commands,
    engine_error,
    is_error_reply,
    new_reply_parser,
)

READ_CHUNK = 1 << 16
_BROKEN = (
    OSError,
    EOFError,
    asyncio.IncompleteReadError,
    ReplyProtocolError,
    UnicodeDecodeError,
    ValueError,
)


class EngineConnection:
    """One connection to a node's unix socket. ``timeout`` bounds each wait for the node (None: the
    caller bounds the whole exchange itself)."""

    __slots__ = ("socket", "_reader", "_writer", "_parser", "_timeout", "_secrets")

    def __init__(
        self,
        socket: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decode: bool,
        timeout: float | None,
        secrets: tuple[str, ...],
    ) -> None:
        self.socket = socket
        self._reader = reader
        self._writer = writer
        self._parser = new_reply_parser(decode)
        self._timeout = timeout
        self._secrets = secrets

    def __repr__(self) -> str:
        return f"EngineConnection({self.socket!r})"

    @classmethod
    async def open(
        cls,
        socket: str,
        user: str = "",
        password: str = "",
        *,
        decode: bool = False,
        timeout: float | None = None,
        client_name: str = "",
    ) -> EngineConnection:
        """Connect and, with a password, authenticate as ``user``; raise EngineUnreachable if the
        socket does not answer, EngineAuthError (or the class of whatever the node answered) if it
        refuses."""
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(socket, limit=READ_CHUNK)
        except (OSError, TimeoutError) as e:
            gone = isinstance(e, ConnectionRefusedError | FileNotFoundError)
            raise EngineUnreachable(f"node at {socket}: cannot connect: {type(e).__name__}", gone) from e
        connection = cls(socket, reader, writer, decode, timeout, (password,) if password else ())
        hello: list[Command] = []
        if password:
            hello.append(("AUTH", user, password) if user else ("AUTH", password))
        if client_name:
            hello.append(("CLIENT", "SETNAME", client_name))
        if hello:
            try:
                replies = await connection.send(hello)
            except BaseException:
                connection.abort()
                raise
            if password and is_error_reply(replies[0]):
                connection.abort()
                where = f"node at {socket}: the user {user or 'default'} was refused"
                raise engine_error(replies[0], where, connection._secrets)
        return connection

    async def send(self, commands: Sequence[Command], what: str = "") -> list[object]:
        """Send ``commands`` in one write and return their replies in order, error replies as values
        (``is_error_reply``). Raise EngineUnreachable (the connection closed) if it broke, saying
        ``what`` failed (by default the first command's name)."""
        if not commands:
            return []
        try:
            return await self._exchange(encode_commands(commands), len(commands))
        except _BROKEN as e:
            self.abort()
            what = what or describe_command(commands[0])
            raise EngineUnreachable(f"node at {self.socket}: {what} failed: {type(e).__name__}: {e}") from e
        except BaseException:
            # Timed out or cancelled halfway: replies may still be owed, so the connection is done.
            self.abort()
            raise

    async def execute(self, *args: Arg) -> object:
        """Run one command; raise the EngineError its error reply names, or EngineUnreachable."""
        reply = (await self.send([args]))[0]
        if is_error_reply(reply):
            raise self._error(args, reply)
        return reply

    async def pipeline(self, commands: Sequence[Command]) -> list[object]:
        """Run ``commands`` in one round trip; raise the error of the first that failed, after all
        of them ran."""
        replies = await self.send(commands, "pipeline")
        for command, reply in zip(commands, replies, strict=True):
            if is_error_reply(reply):
                raise self._error(command, reply, " pipeline")
        return replies

    def _error(self, command: Command, reply: object, what: str = "") -> EngineError:
        where = f"node at {self.socket}: {describe_command(command)}{what} failed"
        return engine_error(reply, where, self._secrets)

    async def _exchange(self, payload: bytes, count: int) -> list[object]:
        self._writer.write(payload)
        await self._writer.drain()
        replies: list[object] = []
        parser = self._parser
        while True:
            reply = parser.gets()
            while reply is not False:
                replies.append(reply)
                if len(replies) == count:
                    return replies
                reply = parser.gets()
            async with asyncio.timeout(self._timeout):
                data = await self._reader.read(READ_CHUNK)
            if not data:
                raise EOFError("the node closed the connection")
            parser.feed(data)

    def close(self) -> None:
        self._writer.close()

    @property
    def broken(self) -> bool:
        """Whether the node closed it while it was idle (the node restarted): no use taking it."""
        return self._reader.at_eof() or self._writer.is_closing()

    def abort(self) -> None:
        """Drop the connection at once: a hung node reads nothing, and a graceful close would wait."""
        self._writer.transport.abort()


class EnginePool:
    """Authenticated connections to one node, one per request in flight, kept open between requests.

    ``legacy_password`` is tried once if ``password`` is refused: the password a node started by an
    older amr still has, until the control plane's convergence sets the current one. ``retries``
    reconnect attempts (with a short backoff) cover a node restarting under the supervisor, which
    comes back within milliseconds."""

    def __init__(
        self,
        socket: str,
        user: str,
        password: str,
        *,
        timeout: float,
        decode: bool = True,
        client_name: str = "",
        legacy_password: str = "",
        retries: int = 0,
    ) -> None:
        self.socket = socket
        self._user = user
        self._password = password
        self._legacy_password = legacy_password
        self._timeout = timeout
        self._decode = decode
        self._client_name = client_name
        self._retries = retries
        self._idle: list[EngineConnection] = []
        self._legacy_first = False

    def __repr__(self) -> str:
        return f"EnginePool({self.socket!r}, user={self._user!r})"

    async def execute(self, *args: Arg) -> object:
        """Run one command; raise NodeError (an EngineError for an error reply) on failure."""
        return (await self._run([args], single=True))[0]

    async def pipeline(self, commands: Sequence[Command]) -> list[object]:
        """Run ``commands`` in one round trip (no transaction) on a connection of their own; raise
        NodeError if any failed (after all of them ran) or the connection broke."""
        if not commands:
            return []
        return await self._run(commands, single=False)

    async def _run(self, commands: Sequence[Command], single: bool) -> list[object]:
        attempt = 0
        while True:
            try:
                replies = await self._once(commands, single)
            except EngineUnreachable:
                # One command is tried again on a new connection, as redis-py's retry did; a pipeline
                # is not (its caller replans: slot migration's steps are idempotent).
                if not single or attempt >= self._retries:
                    raise
                await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
                attempt += 1
                continue
            return replies

    def _take_idle(self) -> EngineConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.broken:
                return connection
            connection.abort()
        return None

    async def _once(self, commands: Sequence[Command], single: bool) -> list[object]:
        connection = self._take_idle() or await self._open()
        try:
            if single:
                replies = [await connection.execute(*commands[0])]
            else:
                replies = await connection.pipeline(commands)
        except EngineError:
            self._idle.append(connection)  # an error reply leaves the connection usable
            raise
        except TimeoutError as e:
            name = "pipeline" if not single else describe_command(commands[0])
            raise EngineUnreachable(f"node at {self.socket}: {name} failed: TimeoutError") from e
        self._idle.append(connection)
        return replies

    async def _open(self) -> EngineConnection:
        # The password that worked last is tried first, then the other: a node moves from the legacy
        # password to the current one when the control plane converges it, and a pool kept open
        # across that (the control plane's, amr.nodes.local) must follow.
        first, second = self._password, self._legacy_password
        if self._legacy_first:
            first, second = second, first
        try:
            return await self._open_as(first)
        except EngineAuthError:
            if not second:
                raise
        connection = await self._open_as(second)
        self._legacy_first = second == self._legacy_password
        return connection

    async def _open_as(self, password: str) -> EngineConnection:
        try:
            return await EngineConnection.open(
                self.socket,
                self._user,
                password,
                decode=self._decode,
                timeout=self._timeout,
                client_name=self._client_name,
            )
        except TimeoutError as e:
            raise EngineUnreachable(f"node at {self.socket}: connecting timed out") from e

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
