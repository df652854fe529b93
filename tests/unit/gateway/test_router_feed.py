"""The router's client side without sockets: commands split anywhere (even exactly between two
arguments of one command) reach the node whole and in order, and replies come back in order."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.router import Router
from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.resp.frames import render_command
from tests.unit.gateway.router_fakes import FakeTransport, router_on_one_node


def test_commands_split_anywhere_reach_the_node_whole_and_replies_return_in_order() -> None:
    asyncio.run(_split_anywhere())


async def _split_anywhere() -> None:
    commands = [
        render_command([b"SET", b"k%d" % i, b"v" * random.Random(i).randint(0, 300)]) for i in range(50)
    ]
    stream = b"".join(commands)
    rng = random.Random(3)
    for _ in range(30):
        router, client_t, node_t, closed = router_on_one_node()
        # Cut points include every boundary between two arguments of the first command.
        cuts = sorted({7, 14, 21, *(rng.randrange(len(stream)) for _ in range(20))})
        pos = 0
        for cut in [*cuts, len(stream)]:
            router.feed(stream[pos:cut])
            pos = cut
        assert closed == []
        assert b"".join(node_t.written) == stream
        router.table.links["/node.sock"].data_received(b"+OK\r\n" * 25)
        router.table.links["/node.sock"].data_received(b"+OK\r\n" * 25)
        assert client_t.written == []  # written once the loop has read every node of this turn
        await asyncio.sleep(0)
        assert client_t.written == [b"+OK\r\n" * 50]
        assert b"".join(client_t.written) == b"+OK\r\n" * 50


def test_a_chunk_ending_between_arguments_is_not_taken_for_an_inline_command() -> None:
    router, client_t, node_t, closed = router_on_one_node()
    router.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n")
    router.feed(b"$7\r\nabcdefg\r\n")
    assert closed == [] and b"".join(node_t.written) == render_command([b"SET", b"k", b"abcdefg"])


def test_malformed_input_gets_an_error_and_closes() -> None:
    router, client_t, node_t, closed = router_on_one_node()
    router.feed(b"*2\r\n:1\r\n$1\r\nx\r\n")
    assert client_t.written[-1].startswith(b"-ERR Protocol error") and closed == ["protocol_error"]
    router, client_t, node_t, closed = router_on_one_node()
    router.feed(b"*1\r\n$x\r\n")
    assert client_t.written[-1].startswith(b"-ERR Protocol error") and closed == ["protocol_error"]


def test_an_array_inside_a_command_is_refused() -> None:
    for bad in (b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n", b"*1\r\n*1\r\n$3\r\nGET\r\n"):
        router, client_t, node_t, closed = router_on_one_node()
        router.feed(bad)
        assert client_t.written[-1] == b"-ERR Protocol error: expected an array of bulk strings\r\n"
        assert closed == ["protocol_error"] and node_t.written == []


def test_a_fault_in_routing_is_not_answered_as_the_clients_protocol_error() -> None:
    # The refusal is for what the client sent; a bug in the router must surface, not close the
    # client with a message that blames it.
    router, client_t, node_t, closed = router_on_one_node()

    router.topology.slot_map = None  # type: ignore[assignment]  # routing then fails
    try:
        router.feed(b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n")
    except AttributeError:
        pass
    else:
        raise AssertionError("the fault was swallowed")
    assert not any(w.startswith(b"-ERR Protocol error") for w in client_t.written) and closed == []


def test_moved_and_ask_are_followed_without_the_client_seeing_them() -> None:
    asyncio.run(_moved_and_ask_are_followed_without_the_client_seeing_them())


async def _moved_and_ask_are_followed_without_the_client_seeing_them() -> None:
    client_t, a_t, b_t = FakeTransport(), FakeTransport(), FakeTransport()
    closed: list[str] = []
    client: Any = SimpleNamespace(transport=client_t, close_for=closed.append)
    slot_map = SlotMap([0] * 16384, ("/a.sock", "/b.sock"))
    refreshed: list[bool] = []
    topology: Any = SimpleNamespace(
        ready=True,
        commands={},
        slot_map=slot_map,
        refresh_soon=lambda: refreshed.append(True),
        socket_for_port=lambda port: {8500: "/a.sock", 8501: "/b.sock"}.get(port),
    )
    router = Router(client, topology, {})
    a, b = NodeLink(router.table, "/a.sock"), NodeLink(router.table, "/b.sock")
    a.transport, b.transport = a_t, b_t  # type: ignore[assignment]
    router.table.links.update({"/a.sock": a, "/b.sock": b})
    router.start(None, b"")
    router.feed(render_command([b"GET", b"foo"]) + render_command([b"GET", b"bar"]))
    assert b"".join(a_t.written) == render_command([b"GET", b"foo"]) + render_command([b"GET", b"bar"])
    # foo's slot moved to b; bar's is being imported by b.
    a.data_received(b"-MOVED 12182 localhost:8501\r\n-ASK 5061 localhost:8501\r\n")
    assert b"".join(b_t.written) == (
        render_command([b"GET", b"foo"]) + b"*1\r\n$6\r\nASKING\r\n" + render_command([b"GET", b"bar"])
    )
    assert slot_map.socket_for(12182) == "/b.sock" and slot_map.socket_for(5061) == "/a.sock"
    assert refreshed and client_t.written == []
    b.data_received(b"$1\r\n1\r\n+OK\r\n$1\r\n2\r\n")  # GET foo, ASKING, GET bar
    router.replies.flush()
    assert b"".join(client_t.written) == b"$1\r\n1\r\n$1\r\n2\r\n" and closed == []


def test_a_client_with_too_many_unanswered_commands_is_not_read() -> None:
    asyncio.run(_a_client_with_too_many_unanswered_commands_is_not_read())


async def _a_client_with_too_many_unanswered_commands_is_not_read() -> None:
    router, client_t, node_t, closed = router_on_one_node()
    paused: list[bool] = []
    client_t.pause_reading = lambda: paused.append(True)  # type: ignore[method-assign]
    client_t.resume_reading = lambda: paused.append(False)  # type: ignore[method-assign]
    router.feed(render_command([b"GET", b"k"]) * 10_001)
    assert paused == [True]
    router.table.links["/node.sock"].data_received(b"$-1\r\n" * 10_001)
    router.replies.flush()
    assert paused == [True, False] and closed == []


def test_quit_is_answered_then_the_client_is_closed_and_nothing_after_it_runs() -> None:
    asyncio.run(_quit_is_answered_then_closed())


async def _quit_is_answered_then_closed() -> None:
    # Alone, pipelined after other commands (answered by the node first), and inline.
    for stream in (
        render_command([b"QUIT"]),
        render_command([b"SET", b"k", b"1"])
        + render_command([b"QUIT"])
        + render_command([b"SET", b"x", b"2"]),
        b"PING\r\nQUIT\r\nSET x 2\r\n",
    ):
        router, client_t, node_t, closed = router_on_one_node()
        router.feed(stream)
        sent = b"".join(node_t.written)
        assert b"QUIT" not in sent and b"x" not in sent
        if sent:
            router.table.links["/node.sock"].data_received(b"+OK\r\n" if b"SET" in sent else b"+PONG\r\n")
        await asyncio.sleep(0)
        assert b"".join(client_t.written).endswith(b"+OK\r\n"), stream
        assert closed == ["client_quit"], stream


def test_quit_inside_a_transaction_is_not_queued() -> None:
    router, client_t, node_t, closed = router_on_one_node()
    router.feed(render_command([b"MULTI"]) + render_command([b"QUIT"]))
    assert b"".join(client_t.written) == b"+OK\r\n+OK\r\n" and closed == ["client_quit"]
