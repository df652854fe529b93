"""Big EnterpriseCluster commands: followed without being held (CommandScanner), streamed when their
head says where they go (choose_stream_slot), held from a gateway-wide budget otherwise
(plan_request_hold), and the router doing each with fake transports."""

from __future__ import annotations

import asyncio
import random

import pytest

from amr.gateway.router_budget import RequestBudget
from amr.gateway.routing.items import STREAMED_REDIRECT_REPLY
from amr.gateway.routing.router import Router
from amr.logic.dataplane.command_routing import KeySpec
from amr.logic.dataplane.request_stream import (
    HELD_BUDGET,
    MAX_HELD_COMMAND,
    STREAM_AT,
    CommandScanner,
    HoldDecision,
    choose_stream_slot,
    plan_request_hold,
)
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command
from amr.logic.resp.requests import RespProtocolError
from tests.unit.gateway.router_fakes import FakeTransport, router_on_one_node

TABLE = {
    b"set": KeySpec(1, 1, 1),
    b"publish": KeySpec(0, 0, 0),
    b"echo": KeySpec(0, 0, 0),
    b"mset": KeySpec(1, -1, 2),
    b"eval": KeySpec(0, 0, 0, movable=True),
    b"sunionstore": KeySpec(1, -1, 1),
    b"object": KeySpec(0, 0, 0, container=True),
}
MB = 1 << 20


def _scan(data: bytes, cut: int | None = None) -> tuple[CommandScanner, int]:
    scanner = CommandScanner()
    return scanner, scanner.feed(data if cut is None else data[:cut])


def test_the_scanner_finds_where_a_command_ends_however_it_is_cut() -> None:
    command = render_command([b"SET", b"key", b"v" * 100_000, b"EX", b"10"])
    after = b"*1\r\n$4\r\nPING\r\n"
    stream = command + after
    rng = random.Random(1)
    for _ in range(200):
        cuts = sorted({rng.randrange(1, len(stream)) for _ in range(rng.randrange(1, 8))})
        scanner, taken, pos = CommandScanner(), 0, 0
        for cut in [*cuts, len(stream)]:
            if not scanner.done:
                taken += scanner.feed(stream[pos:cut])
            pos = cut
        assert scanner.done and taken == len(command)
        # The name and key are kept; the big value is not.
        assert scanner.args == [b"SET", b"key"]
        assert scanner.argc == 5


def test_the_scanner_refuses_what_is_not_an_array_of_bulk_strings() -> None:
    for bad in (
        b"+PING\r\n",
        b"*1\r\n:5\r\n",
        b"*x\r\n",
        b"*1\r\n$-1\r\n",
        b"*0\r\n",
        b"*1\r\n$" + b"9" * 30,
    ):
        with pytest.raises(RespProtocolError):
            CommandScanner().feed(bad)


def test_a_command_streams_when_its_keys_come_before_the_big_argument() -> None:
    head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\n" + b"x" * 1000
    scanner, _ = _scan(head)
    assert not scanner.done and scanner.arguments_complete == 2
    assert choose_stream_slot(scanner, TABLE) == choose_key_slot(b"k")
    # Keyless: any node.
    scanner, _ = _scan(b"*3\r\n$4\r\nECHO\r\n$5000000\r\nxx")
    assert choose_stream_slot(scanner, TABLE) == -1
    # PUBLISH: the pub/sub node, the one serving slot 0.
    scanner, _ = _scan(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5000000\r\nxx")
    assert choose_stream_slot(scanner, TABLE) == 0


@pytest.mark.parametrize(
    "head",
    [
        b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$5000000\r\nxx",  # split across shards by the router
        b"*4\r\n$4\r\nEVAL\r\n$5000000\r\nxx",  # its keys come after the script
        b"*4\r\n$11\r\nSUNIONSTORE\r\n$1\r\nd\r\n$5000000\r\nxx",  # a key after the big one
        b"*3\r\n$6\r\nOBJECT\r\n$8\r\nENCODING\r\n$5000000\r\nxx",  # a container
        b"*3\r\n$7\r\nUNKNOWN\r\n$1\r\nk\r\n$5000000\r\nxx",  # the engine does not know it
        b"*3\r\n$3\r\nSET\r\n$5000000\r\nxx",  # the key itself is the big argument
    ],
)
def test_a_command_whose_destination_is_not_known_yet_is_not_streamed(head: bytes) -> None:
    scanner, _ = _scan(head)
    assert choose_stream_slot(scanner, TABLE) is None


def test_held_commands_take_from_the_budget_and_wait_for_room() -> None:
    # Up to STREAM_AT a connection holds on its own; beyond, from the budget.
    assert plan_request_hold(STREAM_AT, 0, 0) == HoldDecision("hold", 0)
    assert plan_request_hold(STREAM_AT + 10, 0, 0) == HoldDecision("hold", 10)
    # Giving back when the command shrank or completed.
    assert plan_request_hold(0, 10, 10) == HoldDecision("hold", -10)
    # No room: paused, not failed; past the per-command cap: refused (and its bytes given back).
    assert plan_request_hold(STREAM_AT + 10, 0, HELD_BUDGET - 5) == HoldDecision("pause")
    assert plan_request_hold(MAX_HELD_COMMAND + 1, 7, 7) == HoldDecision("refuse", -7)


def _router(budget: RequestBudget | None = None) -> tuple[Router, FakeTransport, FakeTransport, list[str]]:
    return router_on_one_node(TABLE, budget)


def test_a_big_set_reaches_the_node_as_it_arrives_and_the_router_holds_none_of_it() -> None:
    asyncio.run(_big_set())


async def _big_set() -> None:
    router, client_t, node_t, closed = _router()
    value = b"v" * (20 * MB)
    command = render_command([b"SET", b"k", value])
    stream = command + render_command([b"GET", b"k"])
    sent = 0
    for pos in range(0, len(stream), 256 << 10):
        router.feed(stream[pos : pos + (256 << 10)])
        sent = min(pos + (256 << 10), len(stream))
        if STREAM_AT + (256 << 10) < sent < len(command):
            # Streaming: everything received so far is at the node, nothing is held here.
            assert sum(map(len, node_t.written)) == sent
            assert router.carry == 0 and router.tail == [] and router.big.stream is not None
    assert closed == []
    assert b"".join(node_t.written) == stream  # the GET after it was parsed and routed as usual
    assert router.big.stream is None
    router.table.links["/node.sock"].data_received(b"+OK\r\n$1\r\nv\r\n")
    await asyncio.sleep(0)
    assert b"".join(client_t.written) == b"+OK\r\n$1\r\nv\r\n"


def test_a_streamed_command_waits_for_earlier_replies_and_a_redirect_becomes_tryagain() -> None:
    router, client_t, node_t, closed = _router()
    router.feed(render_command([b"GET", b"a"]))
    big = render_command([b"SET", b"k", b"v" * (2 * MB)])
    router.feed(big[: STREAM_AT + 100])
    # The GET's reply is not in: the big command waits, and the client is not read.
    assert client_t.paused and router.big.head is not None
    assert b"".join(node_t.written) == render_command([b"GET", b"a"])
    router.table.links["/node.sock"].data_received(b"$1\r\nx\r\n")
    assert not client_t.paused and router.big.stream is not None
    router.feed(big[STREAM_AT + 100 :])
    assert b"".join(node_t.written) == render_command([b"GET", b"a"]) + big
    router.table.links["/node.sock"].data_received(b"-MOVED 7629 127.0.0.1:8501\r\n")
    router.replies.flush()
    assert b"".join(client_t.written) == b"$1\r\nx\r\n" + STREAMED_REDIRECT_REPLY
    assert closed == []


def test_commands_that_cannot_stream_are_held_from_the_budget_and_paused_when_it_is_full() -> None:
    budget = RequestBudget()
    routers = [_router(budget) for _ in range(3)]
    big = render_command([b"MSET", b"{t}a", b"v" * (MAX_HELD_COMMAND - 2 * MB), b"{t}b", b"c"])
    cut = MAX_HELD_COMMAND - 3 * MB
    for router, _, node, _ in routers[:2]:
        router.feed(big[:cut])
        assert node.written == []  # held whole: MSET is split by key, after the big value
    assert budget.total == 2 * (cut - STREAM_AT)
    third, client3, node3, closed3 = routers[2]
    third.feed(big[: 10 * MB])
    # Over the budget: the third client is paused, not failed, and takes nothing from it.
    assert client3.paused and closed3 == [] and budget.total == 2 * (cut - STREAM_AT)
    first, _, node1, closed1 = routers[0]
    first.feed(big[cut:])  # the first completes and gives its bytes back: the third goes on
    assert b"".join(node1.written) == big and closed1 == []
    assert not client3.paused and budget.total <= HELD_BUDGET
    third.feed(big[10 * MB :])
    assert b"".join(node3.written) == big and closed3 == []
    routers[1][0].feed(big[cut:])
    assert budget.total == 0


def test_a_held_command_past_the_cap_is_refused_and_gives_its_bytes_back() -> None:
    budget = RequestBudget()
    router, client_t, _, closed = _router(budget)
    router.feed(b"*3\r\n$4\r\nMSET\r\n$1\r\na\r\n$600000000\r\n")
    for _ in range(MAX_HELD_COMMAND // MB + 1):
        router.feed(b"x" * MB)
        if closed:
            break
    assert closed == ["request_too_large"]
    assert client_t.written == [b"-ERR Protocol error: request too large\r\n"]
    router.close()
    assert budget.total == 0


def test_a_big_reply_on_the_clients_own_connection_passes_through_as_it_arrives() -> None:
    router, client_t, _, closed = _router()
    router.feed(render_command([b"GET", b"k"]) + render_command([b"SET", b"a", b"b"]))
    link = router.table.links["/node.sock"]
    value = bytes(random.Random(5).randbytes(3 * MB))
    reply = b"$%d\r\n%s\r\n" % (len(value), value)
    chunk = 256 << 10
    for pos in range(0, len(reply), chunk):
        link.data_received(reply[pos : pos + chunk])
        if STREAM_AT + chunk < pos + chunk < len(reply):
            # Past 1 MB the reply goes to the client as it comes, and the gateway frames none of it.
            assert sum(map(len, client_t.written)) == pos + chunk
            assert link.framer.buffered == 0
    link.data_received(b"+OK\r\n")
    assert b"".join(client_t.written) == reply + b"+OK\r\n"
    assert not router.replies.fifo and not link.owed and closed == []
