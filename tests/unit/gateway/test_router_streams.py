"""Pub/sub and MONITOR through the router without sockets: the node connections each one needs,
their frames passed on whole, counts made the client's, and no redirect reaching the client."""

from __future__ import annotations

import asyncio
from typing import Any

from amr.gateway.routing.streams import Streams
from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import KeySpec
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command
from tests.unit.gateway.router_fakes import router_on_nodes

A, B = "/a.sock", "/b.sock"
SLOT_MAP = SlotMap([0] * 8192 + [1] * 8192, (A, B))  # slot 0 (the pub/sub node's) on A


def _channel(node: int) -> bytes:
    return next(b"ch%d" % i for i in range(100) if (choose_key_slot(b"ch%d" % i) >= 8192) == bool(node))


def _confirm(kind: bytes, channel: bytes, count: int) -> bytes:
    return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:%d\r\n" % (len(kind), kind, len(channel), channel, count)


def _sent(transports: list[Any]) -> bytes:
    return b"".join(b"".join(t.written) for t in transports)


def test_subscriptions_go_to_the_pubsub_node_and_sharded_ones_to_their_shards(monkeypatch: Any) -> None:
    asyncio.run(_subscriptions(monkeypatch))


async def _subscriptions(monkeypatch: Any) -> None:
    router, client_t, nodes, closed = router_on_nodes(monkeypatch, SLOT_MAP, {b"get": KeySpec(1, 1, 1)})
    on_a, on_b = _channel(0), _channel(1)
    router.feed(render_command([b"SUBSCRIBE", b"news"]))
    streams = router.table.pubsub
    assert isinstance(streams, Streams) and set(nodes) == {A}
    barrier = render_command([b"PING", streams.token])
    pong = b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(streams.token), streams.token)
    router.feed(render_command([b"SSUBSCRIBE", on_a]) + render_command([b"SSUBSCRIBE", on_b]))
    router.feed(render_command([b"SSUBSCRIBE", on_a, on_b]) + render_command([b"PING"]))
    # SSUBSCRIBE on_b goes to B only once A answered what it owes (the barrier's pong): the rest waits.
    assert (
        _sent(nodes[A])
        == b"".join(render_command(c) for c in ([b"SUBSCRIBE", b"news"], [b"SSUBSCRIBE", on_a])) + barrier
    )
    assert B not in nodes or _sent(nodes[B]) == b""
    a = streams.links[A]
    a.data_received(_confirm(b"subscribe", b"news", 1) + _confirm(b"ssubscribe", on_a, 1) + pong)
    assert _sent(nodes[B]) == render_command([b"SSUBSCRIBE", on_b]) + barrier
    b = streams.links[B]
    b.data_received(_confirm(b"ssubscribe", on_b, 1) + pong)
    # The CROSSSLOT answer, then PING to the pub/sub node, in the order of the commands; the pong
    # is not passed on. Each node counts its own sharded channels; the client sees the total.
    assert _sent(nodes[A]).endswith(barrier + render_command([b"PING"]))
    assert b"".join(client_t.written) == (
        _confirm(b"subscribe", b"news", 1)
        + _confirm(b"ssubscribe", on_a, 1)
        + _confirm(b"ssubscribe", on_b, 2)
        + b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    )
    a.data_received(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    # Frames from two nodes interleave whole; a redirect is never passed on.
    message = b"*3\r\n$8\r\nsmessage\r\n$%d\r\n%s\r\n$2\r\nhi\r\n" % (len(on_b), on_b)
    b.data_received(message[:10])
    a.data_received(b"-MOVED 5 10.0.0.1:7001\r\n")
    b.data_received(message[10:])
    assert b"".join(client_t.written).endswith(
        b"-TRYAGAIN the channel's shard is moving; send the command again\r\n" + message
    )
    # SUNSUBSCRIBE without channels: every connection that has some, one after the other.
    router.feed(render_command([b"SUNSUBSCRIBE"]))
    a.data_received(pong)  # the barrier after the PING, before SUNSUBSCRIBE goes elsewhere
    first, second = (
        (nodes[A], nodes[B])
        if _sent(nodes[A]).endswith(render_command([b"SUNSUBSCRIBE"]) + barrier)
        else (nodes[B], nodes[A])
    )
    assert _sent(first).endswith(render_command([b"SUNSUBSCRIBE"]) + barrier)
    assert not _sent(second).endswith(render_command([b"SUNSUBSCRIBE"]))
    first_link, second_link = (a, b) if first is nodes[A] else (b, a)
    first_channel, second_channel = (on_a, on_b) if first is nodes[A] else (on_b, on_a)
    first_link.data_received(_confirm(b"sunsubscribe", first_channel, 0) + pong)
    assert _sent(second).endswith(render_command([b"SUNSUBSCRIBE"]))
    second_link.data_received(_confirm(b"sunsubscribe", second_channel, 0))
    assert b"".join(client_t.written).endswith(
        _confirm(b"sunsubscribe", first_channel, 1) + _confirm(b"sunsubscribe", second_channel, 0)
    )
    # A command on keys (RESP3 allows them while subscribed) is refused, not sent to some shard;
    # after what the previous node owed (its barrier's pong).
    router.feed(render_command([b"GET", b"k"]))
    second_link.data_received(pong)
    assert b"".join(client_t.written).endswith(b"use another connection for commands on keys\r\n")
    assert b"GET" not in _sent(nodes[A]) + _sent(nodes[B])
    # QUIT: to the pub/sub node, whose closing ends the client's connection as asked.
    router.feed(render_command([b"QUIT"]))
    assert _sent(nodes[A]).endswith(render_command([b"QUIT"]))
    a.connection_lost(None)
    assert closed == ["client_quit"]


def test_monitor_runs_on_every_primary_and_answers_once(monkeypatch: Any) -> None:
    asyncio.run(_monitor(monkeypatch))


async def _monitor(monkeypatch: Any) -> None:
    router, client_t, nodes, closed = router_on_nodes(monkeypatch, SLOT_MAP, {b"get": KeySpec(1, 1, 1)})
    router.feed(render_command([b"MONITOR"]))
    assert _sent(nodes[A]) == _sent(nodes[B]) == render_command([b"MONITOR"])
    streams = router.table.pubsub
    assert isinstance(streams, Streams)
    a, b = streams.links[A], streams.links[B]
    a.data_received(b'+OK\r\n+1.0 [0 unix:/a] "SET" "x"\r\n')
    assert client_t.written == []  # one +OK, once every shard monitors; their lines after it
    b.data_received(b"+OK\r\n")
    await asyncio.sleep(0)
    assert b"".join(client_t.written) == b'+OK\r\n+1.0 [0 unix:/a] "SET" "x"\r\n'
    b.data_received(b'+2.0 [0 unix:/b] "GET" "y"\r\n')
    assert b"".join(client_t.written).endswith(b'"GET" "y"\r\n')
    # A command that touches keys is refused as the engine refuses it to a monitoring connection;
    # others go to the pub/sub node.
    router.feed(render_command([b"GET", b"k"]) + render_command([b"PING"]))
    assert b"".join(client_t.written).endswith(b"-ERR Replica can't interact with the keyspace\r\n")
    assert _sent(nodes[A]).endswith(render_command([b"PING"])) and b"GET" not in _sent(nodes[B])
    b.connection_lost(None)  # a shard's node gone: the stream is incomplete, the client is closed
    assert closed == ["node_closed"]
