"""CLIENT TRACKING through the router without sockets: on every node connection, replayed on new
ones, invalidations never ahead of the read they invalidate, a lost connection closing the client."""

from __future__ import annotations

import asyncio
from typing import Any

from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import KeySpec
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command
from tests.unit.gateway.router_fakes import router_on_nodes

A, B = "/a.sock", "/b.sock"
SLOT_MAP = SlotMap([0] * 8192 + [1] * 8192, (A, B))
COMMANDS = {b"get": KeySpec(1, 1, 1)}
TRACKING_ON = render_command([b"CLIENT", b"TRACKING", b"ON"])


def _key(node: int) -> bytes:
    return next(b"k%d" % i for i in range(100) if (choose_key_slot(b"k%d" % i) >= 8192) == bool(node))


def _sent(transports: list[Any]) -> bytes:
    return b"".join(b"".join(t.written) for t in transports)


def _invalidate(key: bytes) -> bytes:
    return b">2\r\n$10\r\ninvalidate\r\n*1\r\n$%d\r\n%s\r\n" % (len(key), key)


def test_tracking_reaches_every_node_connection_and_the_ones_opened_later(monkeypatch: Any) -> None:
    asyncio.run(_tracking(monkeypatch))


async def _tracking(monkeypatch: Any) -> None:
    router, client_t, nodes, closed = router_on_nodes(monkeypatch, SLOT_MAP, COMMANDS)
    router.feed(render_command([b"GET", _key(0)]))
    links = router.table.links
    links[A].data_received(b"$-1\r\n")
    # ON (as OPTIN: the nodes track every read) on the open connection, then a read on another
    # shard in the same pipeline: its new connection turns tracking on before the read.
    router.feed(render_command([b"CLIENT", b"TRACKING", b"ON", b"OPTIN"]) + render_command([b"GET", _key(1)]))
    assert _sent(nodes[A]).endswith(TRACKING_ON)
    assert _sent(nodes[B]) == TRACKING_ON + render_command([b"GET", _key(1)])
    links[A].data_received(b"+OK\r\n")
    # An invalidation that comes after the read's reply on its connection is not written before it.
    links[B].data_received(b"+OK\r\n$1\r\nv\r\n" + _invalidate(_key(1)))
    await asyncio.sleep(0)
    assert b"".join(client_t.written) == b"$-1\r\n+OK\r\n$1\r\nv\r\n" + _invalidate(_key(1))
    assert router.table.tracking == b"optin"
    # CLIENT CACHING is answered by the gateway in that mode.
    router.feed(render_command([b"CLIENT", b"CACHING", b"YES"]))
    assert b"".join(client_t.written).endswith(b"$1\r\nv\r\n" + _invalidate(_key(1)) + b"+OK\r\n")
    assert b"CACHING" not in _sent(nodes[A]) + _sent(nodes[B])
    # A connection lost: the node forgot what it tracked, so the client is closed (it drops its cache).
    links[B].connection_lost(None)
    assert closed == ["node_closed"]


def test_a_refused_tracking_command_is_not_replayed(monkeypatch: Any) -> None:
    asyncio.run(_refused(monkeypatch))


async def _refused(monkeypatch: Any) -> None:
    router, client_t, nodes, closed = router_on_nodes(monkeypatch, SLOT_MAP, COMMANDS)
    router.feed(render_command([b"CLIENT", b"TRACKING", b"ON", b"PREFIX", b"a"]))
    router.table.links[A].data_received(b"-ERR PREFIX option requires BCAST mode to be enabled\r\n")
    await asyncio.sleep(0)
    assert b"".join(client_t.written).startswith(b"-ERR PREFIX")
    assert router.table.tracking is None and b"client|tracking" not in router.table.replay
    router.feed(render_command([b"GET", _key(1)]))
    assert _sent(nodes[B]) == render_command([b"GET", _key(1)])
    # Refused by the gateway: REDIRECT.
    router.feed(render_command([b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", b"3"]))
    router.table.links[B].data_received(b"$-1\r\n")
    await asyncio.sleep(0)
    assert b"".join(client_t.written).endswith(b"use RESP3 (HELLO 3) and tracking without REDIRECT\r\n")
    assert closed == []


def test_a_later_auth_is_replayed_before_tracking(monkeypatch: Any) -> None:
    asyncio.run(_auth_then_tracking(monkeypatch))


async def _auth_then_tracking(monkeypatch: Any) -> None:
    router, client_t, nodes, closed = router_on_nodes(monkeypatch, SLOT_MAP, COMMANDS)
    router.feed(TRACKING_ON)
    router.table.links[A].data_received(b"+OK\r\n")
    router.feed(render_command([b"AUTH", b"key2"]))
    router.table.links[A].data_received(b"+OK\r\n")
    await asyncio.sleep(0)
    router.feed(render_command([b"GET", _key(1)]))
    assert _sent(nodes[B]) == render_command([b"AUTH", b"key2"]) + TRACKING_ON + render_command(
        [b"GET", _key(1)]
    )
