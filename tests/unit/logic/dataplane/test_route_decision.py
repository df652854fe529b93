"""A command's route, decided once (``amr.logic.dataplane.route_decision``), and how the router reads inline
commands and measures RESP ones (``amr.logic.dataplane.request_reading``)."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import (
    ALL_FIRST,
    AUTH,
    BLOCKED,
    EXEC,
    KEYED,
    MGET,
    MONITOR,
    MSET,
    MULTI,
    PUBLISH,
    PUBSUB,
    QUIT,
    SCAN,
    SPLIT_SUM,
    SUBSCRIBE,
    WATCH,
    parse_command_table,
)
from amr.logic.dataplane.request_reading import INLINE_MAX, measure_command, parse_inline_commands
from amr.logic.dataplane.route_decision import choose_route
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command

A, B = "/a.sock", "/b.sock"
# Slots 0-8191 on A, 8192-16383 on B, none unserved but the last one.
SLOT_MAP = SlotMap([0] * 8192 + [1] * 8191 + [-1], (A, B))
TABLE = parse_command_table(
    [[name, -2, [], 1, 1, 1, [], [], [], []] for name in (b"get", b"set")]
    + [[b"blpop", -3, [b"blocking"], 1, -2, 1, [], [], [], []]]
)


def _socket(key: bytes) -> str:
    slot = choose_key_slot(key)
    return (A, B)[SLOT_MAP.owner[slot]] if SLOT_MAP.owner[slot] >= 0 else A


def _route(*args: bytes) -> tuple[int, int, str, bool]:
    return choose_route(args[0].lower(), list(args), TABLE, SLOT_MAP)


@pytest.mark.parametrize(
    ("args", "kind", "keys", "shared"),
    [
        ((b"GET", b"foo"), KEYED, [b"foo"], True),
        ((b"SET", b"{u}a", b"1"), KEYED, [b"{u}a"], True),
        ((b"BLPOP", b"q", b"0"), KEYED, [b"q"], False),  # blocking: never on a shared connection
        ((b"PING",), KEYED, [], True),
        ((b"DEL", b"{t}a", b"{t}b"), SPLIT_SUM, [b"{t}a", b"{t}b"], True),
        ((b"MGET", b"x"), MGET, [b"x"], True),
        ((b"MSET", b"k", b"v", b"{k}2", b"w"), MSET, [b"k", b"{k}2"], True),
        ((b"WATCH", b"w"), WATCH, [b"w"], False),
        ((b"SSUBSCRIBE", b"{ch}a", b"{ch}b"), SUBSCRIBE, [b"{ch}a"], False),
        ((b"SUBSCRIBE", b"ch"), SUBSCRIBE, [], False),
        ((b"FLUSHALL",), ALL_FIRST, [], True),
        ((b"SCAN", b"0"), SCAN, [], True),
        ((b"CLUSTER", b"INFO"), BLOCKED, [], True),
        ((b"MULTI",), MULTI, [], False),
        ((b"EXEC",), EXEC, [], False),
        ((b"AUTH", b"k"), AUTH, [], False),
        ((b"QUIT",), QUIT, [], True),
        ((b"PUBSUB", b"NUMSUB", b"ch"), PUBSUB, [], True),
        ((b"MONITOR",), MONITOR, [], False),
    ],
)
def test_the_route_names_kind_slot_node_and_sharing(
    args: tuple[bytes, ...], kind: int, keys: list[bytes], shared: bool
) -> None:
    slot = choose_key_slot(keys[0]) if keys else -1
    assert _route(*args) == (kind, slot, _socket(keys[0]) if keys else "", shared)


def test_publish_goes_to_the_node_serving_slot_0_where_every_subscriber_is() -> None:
    assert _route(b"PUBLISH", b"ch", b"hi") == (PUBLISH, -1, A, True)
    moved = SlotMap([1] * 16384, (A, B))
    assert choose_route(b"publish", [b"PUBLISH", b"ch", b"m"], TABLE, moved) == (PUBLISH, -1, B, True)


def test_keys_in_different_slots_have_no_one_slot_and_no_node() -> None:
    assert _route(b"SSUBSCRIBE", b"a", b"b")[1:3] == (-2, "")
    assert _route(b"MGET", b"a", b"b")[1:3] == (-2, "")
    assert _route(b"DEL", b"a", b"b")[1:3] == (-2, "")
    assert _route(b"WATCH", b"a", b"b")[1:3] == (-2, "")


def test_a_slot_no_node_serves_goes_to_the_first_primary() -> None:
    key = next(k for k in (b"k%d" % i for i in range(200_000)) if choose_key_slot(k) == 16383)
    assert _route(b"GET", key) == (KEYED, 16383, A, True)


def test_inline_commands_are_read_up_to_the_first_resp_array() -> None:
    read = parse_inline_commands(b"PING\r\n\r\nSET k  v\n*1\r\n$4\r\nPING\r\n")
    assert read.commands == [[b"PING"], [b"SET", b"k", b"v"]]
    assert read.rest == b"*1\r\n$4\r\nPING\r\n" and read.partial == b"" and not read.too_big


def test_an_incomplete_inline_line_is_kept_and_refused_once_too_long() -> None:
    read = parse_inline_commands(b"PING\r\nGET k")
    assert read.commands == [[b"PING"]] and read.partial == b"GET k" and read.rest == b""
    assert not read.too_big
    assert parse_inline_commands(b"x" * (INLINE_MAX + 1)).too_big


@pytest.mark.parametrize("sizes", [[0], [3, 9], [10, 99, 100], [1 << 20]])
def test_a_command_measures_what_it_takes_as_resp(sizes: list[int]) -> None:
    args = [b"v" * n for n in sizes]
    assert measure_command(args) == len(render_command(args))


def test_an_argument_that_is_not_a_bulk_string_cannot_be_measured() -> None:
    with pytest.raises(TypeError):
        measure_command([b"GET", 1])  # type: ignore[list-item]


def test_a_client_that_no_longer_shares_gets_no_shared_route() -> None:
    assert choose_route(b"get", [b"GET", b"k"], TABLE, SLOT_MAP, sharing=False)[3] is False
    assert choose_route(b"get", [b"GET", b"k"], TABLE, SLOT_MAP, sharing=True)[3] is True
