"""Shared node connections without sockets: several routers' commands leave in one write per loop
pass, each reply reaches the client that asked, a redirect is followed for its own client only, a
stateful command waits for the client's shared replies and then takes its own connection, a lost
shared connection fails exactly the clients waiting on it, and a full one pauses all its clients."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from amr.gateway.routing.items import Swallow
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.pool import LinkPool, SharedLink
from amr.gateway.routing.router import Router
from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import parse_command_table
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command
from tests.unit.gateway.router_fakes import FakeTransport

A, B = "/a.sock", "/b.sock"
TABLE = parse_command_table(
    [[name, -2, [], 1, 1, 1, [], [], [], []] for name in (b"get", b"set", b"incr")]
    + [[b"multi", 1, [], 0, 0, 0, [b"@transaction"], [], [], []]]
)


def _cmd(*args: bytes) -> bytes:
    return render_command(list(args))


class World:
    """One listener's pool with an open shared link per node, and routers on it."""

    def __init__(self) -> None:
        self.lost: list[bool] = []
        self.pool = LinkPool(asyncio.get_running_loop(), lambda: self.lost.append(True))
        self.topology: Any = SimpleNamespace(
            ready=True,
            commands=TABLE,
            slot_map=SlotMap([0] * 8192 + [1] * 8192, (A, B)),
            refresh_soon=lambda: None,
            socket_for_port=lambda port: {8500: A, 8501: B}.get(port),
        )
        self.shared: dict[str, SharedLink] = {}
        self.node: dict[str, FakeTransport] = {}
        for socket in (A, B):
            link = SharedLink(self.pool, (socket, b""))
            link.transport = self.node[socket] = FakeTransport()  # type: ignore[assignment]
            self.pool.links[link.key] = link
            self.shared[socket] = link

    def router(self) -> tuple[Router, FakeTransport, list[str]]:
        client_t = FakeTransport()
        closed: list[str] = []
        client: Any = SimpleNamespace(transport=client_t, close_for=closed.append)
        router = Router(client, self.topology, {}, self.pool)
        router.start(None, b"")
        return router, client_t, closed


def _run(body: Any) -> None:
    async def main() -> None:
        await body(World())

    asyncio.run(main())


def test_clients_share_one_write_and_each_gets_its_own_replies() -> None:
    async def body(w: World) -> None:
        routers = [w.router() for _ in range(5)]
        for i, (router, _, _) in enumerate(routers):
            router.feed(_cmd(b"GET", b"a%d" % i))
        slot_a = [i for i in range(5) if w.topology.slot_map.socket_for(choose_key_slot(b"a%d" % i)) == A]
        assert 0 < len(slot_a) < 5
        assert w.node[A].written == [] and w.node[B].written == []  # not before the loop's pass
        await asyncio.sleep(0)
        assert len(w.node[A].written) <= 1 and len(w.node[B].written) <= 1  # one write per node
        assert len(w.shared[A].users) == len(slot_a) and len(w.shared[B].users) == 5 - len(slot_a)
        # Replies in the order the commands were written, each its own value.
        index = {id(router.table): i for i, (router, _, _) in enumerate(routers)}
        for socket in (A, B):
            owed = [index[id(r)] for r, _ in w.shared[socket].owed]
            w.shared[socket].data_received(b"".join(b"$2\r\nv%d\r\n" % i for i in owed))
        for i, (_, client_t, closed) in enumerate(routers):
            assert client_t.written == [b"$2\r\nv%d\r\n" % i] and closed == []

    _run(body)


def test_a_redirect_is_followed_for_its_own_client_only() -> None:
    async def body(w: World) -> None:
        (r1, c1, _), (r2, c2, _) = w.router(), w.router()
        r1.feed(_cmd(b"GET", b"foo"))  # slot 12182: B
        r2.feed(_cmd(b"GET", b"foo"))
        await asyncio.sleep(0)
        # r1's GET is answered ASK (the slot is being imported by A), r2's normally.
        w.shared[B].data_received(b"-ASK 12182 localhost:8500\r\n$1\r\n2\r\n")
        assert c2.written == [b"$1\r\n2\r\n"] and c1.written == []
        await asyncio.sleep(0)
        assert w.node[A].written == [b"*1\r\n$6\r\nASKING\r\n" + _cmd(b"GET", b"foo")]  # one write
        w.shared[A].data_received(b"+OK\r\n$1\r\n1\r\n")
        assert c1.written == [b"$1\r\n1\r\n"]

    _run(body)


def test_a_stateful_command_waits_for_the_shared_replies_then_takes_its_own_connection() -> None:
    async def body(w: World) -> None:
        router, client_t, closed = w.router()
        own = NodeLink(router.table, B)
        own.transport = own_t = FakeTransport()  # type: ignore[assignment]
        router.table.links[B] = own
        router.feed(_cmd(b"SET", b"foo", b"1") + _cmd(b"MULTI") + _cmd(b"INCR", b"foo") + _cmd(b"EXEC"))
        await asyncio.sleep(0)
        assert w.node[B].written == [_cmd(b"SET", b"foo", b"1")] and own_t.written == []
        assert router.table.pool is None and router.table not in w.shared[B].users
        w.shared[B].data_received(b"+OK\r\n")
        assert b"".join(own_t.written) == _cmd(b"MULTI") + _cmd(b"INCR", b"foo") + _cmd(b"EXEC")
        own.data_received(b"+OK\r\n+QUEUED\r\n*1\r\n:2\r\n")
        router.replies.flush()
        assert b"".join(client_t.written) == b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n:2\r\n" and closed == []
        router.feed(_cmd(b"GET", b"foo"))  # from now on its own connection, even for a plain GET
        assert own_t.written[-1] == _cmd(b"GET", b"foo") and w.node[B].written == [_cmd(b"SET", b"foo", b"1")]

    _run(body)


def test_a_lost_shared_link_fails_the_clients_waiting_on_it_and_is_replaced() -> None:
    async def body(w: World) -> None:
        (r1, _, closed1), (r2, _, closed2), (r3, _, closed3) = w.router(), w.router(), w.router()
        r1.feed(_cmd(b"GET", b"foo"))  # B
        r2.feed(_cmd(b"GET", b"foo"))
        r3.feed(_cmd(b"GET", b"bar"))  # slot 5061: A
        await asyncio.sleep(0)
        w.shared[B].data_received(b"$1\r\n1\r\n")  # r1 answered
        w.shared[B].connection_lost(None)
        assert closed1 == [] and closed2 == ["node_closed"] and closed3 == []
        assert w.lost and w.pool.links.get((B, b"")) is None
        r1.feed(_cmd(b"GET", b"foo"))
        replacement = w.pool.links[(B, b"")]
        assert replacement is not w.shared[B] and r1.table in replacement.users
        for task in w.pool._tasks:
            task.cancel()

    _run(body)


def test_a_full_shared_link_pauses_every_client_on_it_until_it_drains() -> None:
    async def body(w: World) -> None:
        (r1, c1, _), (r2, c2, _) = w.router(), w.router()
        r1.feed(_cmd(b"GET", b"foo"))
        w.shared[B].pause_writing()
        assert c1.paused
        r2.feed(_cmd(b"GET", b"foo"))  # joins while full: paused at once
        assert c2.paused
        w.shared[B].resume_writing()
        assert not c1.paused and not c2.paused

    _run(body)


def test_a_client_that_does_not_read_leaves_the_shared_links_without_pausing_them() -> None:
    async def body(w: World) -> None:
        (r1, c1, _), (r2, c2, _) = w.router(), w.router()
        r1.feed(_cmd(b"GET", b"foo"))
        r2.feed(_cmd(b"GET", b"foo"))
        await asyncio.sleep(0)
        r1.pause_links(True)  # its own output is full
        assert r1.table.pool is None and not w.node[B].paused
        w.shared[B].data_received(b"$1\r\n1\r\n$1\r\n2\r\n")
        assert c1.written == [b"$1\r\n1\r\n"] and c2.written == [b"$1\r\n2\r\n"]

    _run(body)


def test_a_refused_auth_replay_closes_the_shared_link_and_fails_its_clients() -> None:
    async def body(w: World) -> None:
        link = w.shared[B]
        link.send(None, _cmd(b"AUTH", b"old-key"), Swallow(link.replay_refused))
        (r1, c1, closed1), (r2, c2, closed2) = w.router(), w.router()
        r1.feed(_cmd(b"GET", b"foo"))
        r2.feed(_cmd(b"SET", b"foo", b"x"))
        w.shared[B].data_received(b"-WRONGPASS invalid username-password pair\r\n-NOAUTH\r\n-NOAUTH\r\n")
        assert closed1 == closed2 == ["auth_replay_refused"] and c1.written == c2.written == []
        assert w.node[B].closing and w.pool.links.get((B, b"")) is None

    _run(body)
