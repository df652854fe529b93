"""amr.nodes.engine_client against a fake node on a unix socket (a few lines of RESP), and the file
follower (amr.home.FollowedFile)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from amr.errors import EngineAuthError, EngineError, EnginePermissionError, EngineUnreachable, NodeError
from amr.home import FollowedFile
from amr.nodes.engine_client import EngineConnection, EnginePool
from amr.testing.fake_engine import FakeEngineSocket

PASSWORD = "s3cret-pw"


class FakeNode(FakeEngineSocket):
    """Accepts AUTH amr-admin <password>; answers PING, GET, SET, BLOCK (never) and errors."""

    def __init__(self, path: str, password: str = PASSWORD) -> None:
        super().__init__(path)
        self.password = password
        self.data: dict[str, str] = {}

    def answer(self, args: list[str], session: dict[str, Any]) -> bytes | None:
        name = args[0].upper()
        if name == "AUTH":
            session["authed"] = args[1:] == ["amr-admin", self.password]
            return b"+OK\r\n" if session["authed"] else b"-WRONGPASS invalid username-password pair\r\n"
        if not session.get("authed"):
            return b"-NOAUTH Authentication required.\r\n"
        if name == "BLOCK":
            return None
        if name == "PING":
            return b"+PONG\r\n"
        if name == "SET":
            self.data[args[1]] = args[2]
        if name in ("SET", "CLIENT"):
            return b"+OK\r\n"
        if name == "GET":
            value = self.data.get(args[1])
            return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value.encode())
        if name == "FLUSHALL":
            return b"-NOPERM User amr-admin has no permissions to run the 'flushall' command\r\n"
        return b"-ERR unknown command '%s', with args beginning with: '%s'\r\n" % (
            args[0].encode(),
            " ".join(args[1:]).encode(),
        )


def run_with_node(
    tmp_path: Path, scenario: Callable[[FakeNode], Awaitable[None]], password: str = PASSWORD
) -> None:
    async def main() -> None:
        node = FakeNode(str(tmp_path / "node.sock"), password)
        await node.start()
        try:
            await scenario(node)
        finally:
            await node.stop()

    asyncio.run(main())


def test_a_connection_authenticates_runs_commands_and_maps_errors(tmp_path: Path) -> None:
    async def scenario(node: FakeNode) -> None:
        connection = await EngineConnection.open(node.path, "amr-admin", PASSWORD, client_name="amr-test")
        try:
            assert node.commands[:2] == [["AUTH", "amr-admin", PASSWORD], ["CLIENT", "SETNAME", "amr-test"]]
            assert await connection.execute("SET", "k", 1) == b"OK"
            assert await connection.execute("GET", "k") == b"1"
            with pytest.raises(EnginePermissionError, match="FLUSHALL failed: NOPERM"):
                await connection.execute("FLUSHALL")
            with pytest.raises(EngineError) as info:
                await connection.execute("NOPE", PASSWORD)
            assert PASSWORD not in str(info.value) and PASSWORD not in repr(connection)
            # An error reply leaves the connection usable.
            assert await connection.execute("PING") == b"PONG"
        finally:
            connection.close()

    run_with_node(tmp_path, scenario)


def test_a_pipeline_runs_every_command_before_raising_the_first_error(tmp_path: Path) -> None:
    async def scenario(node: FakeNode) -> None:
        connection = await EngineConnection.open(node.path, "amr-admin", PASSWORD, decode=True)
        try:
            with pytest.raises(EngineError, match="NOPE pipeline failed"):
                await connection.pipeline([("SET", "a", "1"), ("NOPE",), ("SET", "b", "2")])
            assert node.data == {"a": "1", "b": "2"}
            assert await connection.pipeline([("GET", "a"), ("GET", "zz")]) == ["1", None]
        finally:
            connection.close()

    run_with_node(tmp_path, scenario)


def test_a_refused_password_is_an_auth_error_that_hides_it(tmp_path: Path) -> None:
    async def scenario(node: FakeNode) -> None:
        with pytest.raises(EngineAuthError, match="refused") as info:
            await EngineConnection.open(node.path, "amr-admin", "wrong-pw")
        assert "wrong-pw" not in str(info.value)

    run_with_node(tmp_path, scenario)


def test_nothing_listening_is_unreachable_and_gone(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(EngineUnreachable) as info:
            await EngineConnection.open(str(tmp_path / "none.sock"), "amr-admin", PASSWORD)
        assert info.value.gone and isinstance(info.value, NodeError)

    asyncio.run(scenario())


def run_with_pool(
    tmp_path: Path,
    scenario: Callable[[EnginePool, FakeNode], Awaitable[None]],
    password: str = PASSWORD,
    timeout: float = 5.0,
    legacy_password: str = "",
) -> None:
    async def with_pool(node: FakeNode) -> None:
        pool = EnginePool(node.path, "amr-admin", password, timeout=timeout, legacy_password=legacy_password)
        try:
            await scenario(pool, node)
        finally:
            pool.close()

    run_with_node(tmp_path, with_pool)


def test_the_pool_reuses_connections_and_falls_back_to_the_legacy_password(tmp_path: Path) -> None:
    async def scenario(pool: EnginePool, node: FakeNode) -> None:
        assert await pool.execute("SET", "k", 1) == "OK"
        assert node.connections == 2  # refused with the new password, then the legacy one
        await asyncio.gather(*(pool.execute("SET", f"k{i}", i) for i in range(5)))
        opened = node.connections
        assert opened <= 2 + 4  # one connection was idle; each concurrent request needs its own
        assert await pool.pipeline([("GET", "k3"), ("PING",)]) == ["3", "PONG"]
        await asyncio.gather(*(pool.execute("PING") for _ in range(5)))
        assert node.connections == opened  # reused
        assert "new-pw" not in repr(pool) and PASSWORD not in repr(pool)

    run_with_pool(tmp_path, scenario, password="new-pw", legacy_password=PASSWORD)


def test_a_cancelled_request_never_hands_its_reply_to_the_next(tmp_path: Path) -> None:
    async def scenario(pool: EnginePool, node: FakeNode) -> None:
        assert await pool.execute("PING") == "PONG"
        blocked = asyncio.create_task(pool.execute("BLOCK"))
        await asyncio.sleep(0.05)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        assert await pool.execute("SET", "x", "y") == "OK"
        assert node.connections == 2

    run_with_pool(tmp_path, scenario)


def test_a_timed_out_request_is_unreachable(tmp_path: Path) -> None:
    async def scenario(pool: EnginePool, node: FakeNode) -> None:
        with pytest.raises(EngineUnreachable, match="TimeoutError"):
            await pool.execute("BLOCK")

    run_with_pool(tmp_path, scenario, timeout=0.1)


def test_a_followed_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    followed = FollowedFile(path)
    first = followed.look()
    assert first.changed and first.text is None and not first.error  # missing
    assert not followed.look().changed
    path.write_text("one")
    assert followed.look().text == "one"
    assert not followed.look().changed
    tmp = tmp_path / "routes.json.tmp"
    tmp.write_text("two!")
    os.replace(tmp, path)  # written atomically, as the control plane does
    assert followed.look().text == "two!"
    followed.forget()
    assert followed.look().text == "two!"
    path.write_bytes(b"\xff\xfe")
    broken = followed.look()
    assert broken.changed and broken.text is None and broken.error
    assert not followed.look().changed


def test_a_kept_pool_drops_connections_of_a_restarted_node_and_follows_its_password(tmp_path: Path) -> None:
    async def scenario(pool: EnginePool, node: FakeNode) -> None:
        assert await pool.pipeline([("PING",)]) == ["PONG"]  # the legacy password, tried second
        await node.stop()  # the node restarts: its connections are gone
        await asyncio.sleep(0.05)
        node.password = "new-pw"  # ... and the control plane converged it to the current password
        await node.start()
        # A pipeline (never retried) still works: the dead idle connection is not taken.
        assert await pool.pipeline([("PING",)]) == ["PONG"]
        assert node.commands[-2:] == [["AUTH", "amr-admin", "new-pw"], ["PING"]]

    run_with_pool(tmp_path, scenario, password="new-pw", legacy_password=PASSWORD)
