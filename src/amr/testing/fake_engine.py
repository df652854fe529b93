"""A node's unix socket for unit tests of amr's engine clients (the `amr ha` probe, the engine client
itself): it speaks just enough RESP, reading each command and writing what ``answer`` returns.
Integration tests use real engines; this stands in where a test needs a node to misbehave on cue."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeEngineSocket:
    """Listens on ``path``; records every command in ``commands`` (arguments decoded) and answers it
    with ``answer(args, session)``, where ``session`` is a dict per connection. ``answer`` returning
    None sends nothing, as for a command that blocks. Subclasses (or tests) override ``answer``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.commands: list[list[str]] = []
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None
        self.clients: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, self.path)

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a node whose process died."""
        if self.server is not None:
            self.server.close()
            for writer in self.clients:
                writer.transport.abort()
            self.clients.clear()
            await self.server.wait_closed()
            self.server = None

    def answer(self, args: list[str], session: dict[str, Any]) -> bytes | None:
        return b"+OK\r\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.clients.append(writer)
        session: dict[str, Any] = {}
        try:
            while True:
                count = int((await reader.readuntil(b"\r\n"))[1:-2])
                args = []
                for _ in range(count):
                    size = int((await reader.readuntil(b"\r\n"))[1:-2])
                    args.append((await reader.readexactly(size + 2))[:-2].decode())
                self.commands.append(args)
                reply = self.answer(args, session)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
