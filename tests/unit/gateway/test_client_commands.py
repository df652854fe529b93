"""The gateway's CLIENT commands without sockets to nodes: a spliced connection's interceptor between
fake transports (its CLIENT ID, a barrier, the answer in its place), and the workers' directory asking
each other over real unix sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from amr.gateway.client_directory import ClientDirectory, Spliced
from amr.gateway.splice_intercept import SpliceInterceptor
from amr.logic.dataplane.barrier import CLIENT_ID_COMMAND
from amr.logic.dataplane.client_admin import ClientEntry, parse_client_list
from amr.logic.resp.engine_codec import Command
from amr.logic.resp.frames import render_command
from tests.unit.gateway.router_fakes import FakeTransport

SOCKET = "/run/d1-0-0.sock"
ENGINE_LIST = (
    b"id=7 addr=/run/d1-0-0.sock:0 laddr=/run/d1-0-0.sock:0 fd=9 name= age=3 idle=0 flags=N db=0 cmd=unsubscribe "
    b"user=default resp=2\n"
    b"id=8 addr=/run/d1-0-0.sock:0 laddr=/run/d1-0-0.sock:0 fd=10 name= age=9 idle=1 flags=N db=0 cmd=role "
    b"user=amr-ha resp=2\n"
)


class FakeDirectory(ClientDirectory):
    """A directory whose node answers from a script: every command run is recorded."""

    def __init__(self) -> None:
        super().__init__(lambda socket: "")
        self.ran: list[Command] = []

    async def engine(self, socket: str, commands: Sequence[Command]) -> list[object]:
        self.ran += commands
        return [ENGINE_LIST if command[:2] == (b"CLIENT", b"LIST") else 1 for command in commands]


class FakeClient:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.source, self.source_port, self.database_id = "10.0.0.5", 51000, "db1"
        self.transport.get_extra_info = lambda name, default=None: (
            ("10.0.0.1", 10000) if name == "sockname" else default
        )  # type: ignore[attr-defined]
        self.closed: list[str] = []
        self.audited: list[tuple[str, str | None]] = []

    def close_for(self, reason: str) -> None:
        self.closed.append(reason)

    def refuse(self, reply: bytes, event: str | None, reason: str) -> None:
        self.closed.append(reason)

    def audit(self, event: str, reason: str | None = None) -> None:
        self.audited.append((event, reason))


def _wired() -> tuple[SpliceInterceptor, FakeClient, Any, FakeDirectory]:
    client = FakeClient()
    up = SimpleNamespace(transport=FakeTransport(), _splice=None)
    directory = FakeDirectory()
    interceptor = SpliceInterceptor(client, up, directory, SOCKET)  # type: ignore[arg-type]
    return interceptor, client, up, directory


def test_a_client_list_is_answered_where_the_engine_would_have() -> None:
    async def scenario() -> None:
        interceptor, client, up, directory = _wired()
        interceptor.start(render_command((b"GET", b"k")))
        assert up.transport.written[:2] == [CLIENT_ID_COMMAND, render_command((b"GET", b"k"))]
        interceptor.node_data(b":7\r\n$1\r\nv\r\n")
        assert client.transport.written == [b"$1\r\nv\r\n"]
        assert directory.spliced[SOCKET][7].addr == "10.0.0.5:51000"
        assert up._splice == client.transport.write  # nothing awaited: node bytes go straight through

        interceptor.client_data(render_command((b"CLIENT", b"LIST")) + render_command((b"PING",)))
        barrier = up.transport.written[-1]
        assert barrier.startswith(b"*2\r\n$11\r\nUNSUBSCRIBE\r\n") and barrier.endswith(
            render_command((b"PING",))
        )
        token = barrier.split(b"\r\n")[4]
        confirmation = b"*3\r\n$11\r\nunsubscribe\r\n$28\r\n" + token + b"\r\n:0\r\n"
        interceptor.node_data(b"+OK\r\n" + confirmation + b"+PONG\r\n")
        assert up.transport.paused  # the node is not read while the answer is worked out
        while interceptor.tasks:
            await asyncio.sleep(0)
        written = b"".join(client.transport.written)
        assert written.startswith(b"$1\r\nv\r\n+OK\r\n$") and written.endswith(b"\r\n+PONG\r\n")
        assert b"addr=10.0.0.5:51000 laddr=10.0.0.1:10000" in written and b"cmd=client|list" in written
        assert b"amr-ha" not in written and b"id=8" not in written
        assert not up.transport.paused and up._splice == client.transport.write

        interceptor.forget()
        assert SOCKET not in directory.spliced

    asyncio.run(scenario())


def test_a_kill_of_amrs_own_connection_kills_nothing_and_auth_as_amr_is_refused() -> None:
    async def scenario() -> None:
        interceptor, client, up, directory = _wired()
        interceptor.start(b"")
        interceptor.node_data(b":7\r\n")
        interceptor.client_data(render_command((b"CLIENT", b"KILL", b"ID", b"8")))
        token = up.transport.written[-1].split(b"\r\n")[4]
        interceptor.node_data(b"*3\r\n$11\r\nunsubscribe\r\n$28\r\n" + token + b"\r\n:0\r\n")
        while interceptor.tasks:
            await asyncio.sleep(0)
        assert client.transport.written[-1] == b":0\r\n"
        assert not any(c[:2] == (b"CLIENT", b"KILL") for c in directory.ran)
        interceptor.client_data(render_command((b"AUTH", b"amr-admin", b"pw")))
        assert b"amr-admin" not in up.transport.written[-1]
        assert client.audited == [("auth_failure", "internal_user")]

    asyncio.run(scenario())


class Routed:
    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.closed: list[str] = []

    def describe(self) -> ClientEntry:
        return parse_client_list(f"id={self.client_id} addr=10.0.0.9:{self.client_id} laddr=10.0.0.1:10000")[
            0
        ]

    def close_for(self, reason: str) -> None:
        self.closed.append(reason)


def test_workers_answer_each_other_over_their_sockets(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = ClientDirectory(lambda socket: "", worker=0, workers=2, run_dir=tmp_path)
        second = ClientDirectory(lambda socket: "", worker=1, workers=2, run_dir=tmp_path)
        await first.start()
        await second.start()
        try:
            assert (tmp_path / "gateway-1.sock").stat().st_mode & 0o777 == 0o600
            first.add_spliced(SOCKET, 3, Spliced("10.0.0.5:1", "10.0.0.1:10000", FakeClient()))
            second.add_spliced(SOCKET, 4, Spliced("10.0.0.6:2", "10.0.0.1:8501", FakeClient()))
            assert await first.known_spliced(SOCKET) == {
                3: ("10.0.0.5:1", "10.0.0.1:10000"),
                4: ("10.0.0.6:2", "10.0.0.1:8501"),
            }
            ids = [first.new_routed_id(), second.new_routed_id()]
            assert ids[0] != ids[1]
            mine, theirs = Routed(ids[0]), Routed(ids[1])
            first.add_routed("db1", ids[0], mine)
            second.add_routed("db1", ids[1], theirs)
            assert [e.id for e in await first.routed_entries("db1")] == sorted(ids)
            assert await first.close_routed("db1", [ids[1]]) == 1
            assert theirs.closed == ["client_killed"] and not mine.closed
        finally:
            await second.close()
            await first.close()
        # A worker that does not answer is left out.
        assert await first.known_spliced(SOCKET) == {3: ("10.0.0.5:1", "10.0.0.1:10000")}

    asyncio.run(scenario())
