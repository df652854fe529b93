"""The admin connection's raw pipelines (amr.nodes.engine_client via amr.nodes.admin) against a real valkey-server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from amr.errors import EngineError, EnginePermissionError, NodeError
from amr.nodes.admin import UnixValkeyAdmin
from amr.nodes.engine import find_server_binary
from amr.settings import load_settings
from amr.testing.waits import wait_until_async
from tests.integration.amr_service import wait_until

USER = "amr-admin"
PASSWORD = "s3cret-admin-pw"


class Node:
    def __init__(self, directory: Path) -> None:
        self.socket = str(directory / "node.sock")
        self.conf = directory / "valkey.conf"
        self.conf.write_text(
            f'port 0\nunixsocket "{self.socket}"\nunixsocketperm 700\nsave ""\nappendonly no\n'
            f'logfile ""\ndir "{directory}"\nuser default off\nuser {USER} on >{PASSWORD} ~* &* +@all\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = find_server_binary(load_settings(home=self.conf.parent, env={}))
        self.process = subprocess.Popen([binary, str(self.conf)], stdout=subprocess.DEVNULL)
        wait_until(lambda: self.client().ping(), 10, what="valkey-server to start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket, username=USER, password=PASSWORD)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path)
    n.start()
    yield n
    n.kill()


def admin_connections(node: Node) -> int:
    clients = node.client().client_list()
    return sum(1 for c in clients if c["name"] == "amr-admin")


def test_replies_in_order_raw_or_decoded(node: Node) -> None:
    async def run() -> tuple[list[object], list[object]]:
        raw = UnixValkeyAdmin(node.socket, USER, PASSWORD, decode=False)
        text = UnixValkeyAdmin(node.socket, USER, PASSWORD)
        try:
            commands = [("SET", f"k{i}", i) for i in range(5000)] + [("MGET", "k0", "k4999", "nope")]
            first = await raw.pipeline(commands)
            second = await text.pipeline([("GET", "k7"), ("INCR", "k7"), ("LRANGE", "nope", 0, -1)])
            return first, second
        finally:
            await raw.close()
            await text.close()

    first, second = asyncio.run(run())
    assert first[:5000] == [b"OK"] * 5000
    assert first[5000] == [b"0", b"4999", None]
    assert second == ["7", 8, []]


def pipeline_error(node: Node, password: str, commands: list[tuple[str | int, ...]]) -> str:
    """The NodeError message of running ``commands`` as the admin user with ``password``."""

    async def run() -> str:
        admin = UnixValkeyAdmin(node.socket, USER, password)
        try:
            await admin.pipeline(commands)
        except NodeError as e:
            return str(e)
        finally:
            await admin.close()
        raise AssertionError("no error raised")

    return asyncio.run(run())


def test_an_error_is_raised_after_every_command_ran_and_hides_the_password(node: Node) -> None:
    message = pipeline_error(
        node, PASSWORD, [("SET", "before", 1), ("NOSUCHCOMMAND", PASSWORD), ("SET", "after", 2)]
    )
    assert "NOSUCHCOMMAND pipeline failed" in message
    assert "unknown command" in message
    assert PASSWORD not in message
    client = node.client()
    assert client.get("before") == b"1"
    assert client.get("after") == b"2"


def test_concurrent_pipelines_get_their_own_connections_and_replies(node: Node) -> None:
    async def run() -> tuple[list[list[object]], int]:
        admin = UnixValkeyAdmin(node.socket, USER, PASSWORD)
        try:
            results = await asyncio.gather(
                *(admin.pipeline([("SET", f"c{i}", i), ("GET", f"c{i}"), ("PING",)] * 200) for i in range(20))
            )
            # Pooled: a second round opens no new connection.
            opened = await asyncio.to_thread(admin_connections, node)
            await asyncio.gather(*(admin.pipeline([("PING",)]) for _ in range(20)))
            again = await asyncio.to_thread(admin_connections, node)
            assert again == opened
            return results, opened
        finally:
            await admin.close()

    results, opened = asyncio.run(run())
    for i, replies in enumerate(results):
        assert replies == ["OK", str(i), "PONG"] * 200
    assert 1 < opened <= 20


def test_wrong_password_is_refused(node: Node) -> None:
    message = pipeline_error(node, "not-the-password", [("PING",)])
    assert "refused" in message
    assert "not-the-password" not in message


def test_a_killed_node_fails_the_pipeline_and_a_restarted_one_serves_the_next(node: Node) -> None:
    async def run() -> list[object]:
        admin = UnixValkeyAdmin(node.socket, USER, PASSWORD, timeout=2.0)
        try:
            assert await admin.pipeline([("PING",)]) == ["PONG"]
            node.kill()
            with pytest.raises(NodeError, match="pipeline failed"):
                await admin.pipeline([("PING",)])
            await asyncio.to_thread(node.start)
            return await admin.pipeline([("SET", "x", 1), ("GET", "x")])
        finally:
            await admin.close()

    assert asyncio.run(run()) == ["OK", "1"]


def test_a_cancelled_pipeline_never_hands_its_reply_to_the_next(node: Node) -> None:
    async def run() -> list[object]:
        admin = UnixValkeyAdmin(node.socket, USER, PASSWORD)
        try:
            blocked = asyncio.create_task(admin.pipeline([("BLPOP", "empty-list", 5)]))
            await wait_until_async(
                lambda: asyncio.to_thread(lambda: node.client().info("clients")["blocked_clients"]),
                5,
                what="the BLPOP to block",
            )
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            # The BLPOP's connection is closed, not pooled: this push is not popped by it.
            return await admin.pipeline([("RPUSH", "empty-list", "v"), ("LRANGE", "empty-list", 0, -1)])
        finally:
            await admin.close()

    assert asyncio.run(run()) == [1, ["v"]]


def test_execute_shapes_replies_and_maps_engine_errors(node: Node) -> None:
    node.client().acl_setuser("limited", enabled=True, passwords=["+limited-pw"], commands=["+ping", "+info"])

    async def run() -> None:
        admin = UnixValkeyAdmin(node.socket, USER, "not-the-password", legacy_password=PASSWORD)
        limited = UnixValkeyAdmin(node.socket, "limited", "limited-pw")
        try:
            info = await admin.execute("INFO", "replication")
            assert (
                isinstance(info, dict)
                and info["role"] == "master"
                and isinstance(info["master_repl_offset"], int)
            )
            assert await admin.execute("PING") is True
            assert await admin.execute("CONFIG", "GET", "maxmemory-policy") == [
                "maxmemory-policy",
                "noeviction",
            ]
            with pytest.raises(EnginePermissionError) as info_error:
                await limited.execute("FLUSHALL")
            assert info_error.value.code == "NOPERM"
            with pytest.raises(EngineError, match="ERR") as unknown:
                await admin.execute("NOSUCHCOMMAND", PASSWORD)
            assert PASSWORD not in str(unknown.value)
        finally:
            await admin.close()
            await limited.close()

    asyncio.run(run())
