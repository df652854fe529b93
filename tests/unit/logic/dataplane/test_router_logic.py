"""The router's pure parts: hash slots, reply framing, command classification and key extraction,
reply merges, SCAN cursors, the slot map and redirects."""

from __future__ import annotations

import random

import pytest

from amr.logic.dataplane.cluster_slots import parse_cluster_slots, parse_redirect
from amr.logic.dataplane.command_routing import (
    ALL_FIRST,
    ALL_SUM,
    AUTH,
    BLOCKED,
    INFO,
    KEYED,
    KEYS,
    MGET,
    MSET,
    MULTI,
    SCAN,
    SPLIT_SUM,
    SUBSCRIBE,
    KeySpec,
    choose_keys,
    choose_kind,
    choose_slot,
    parse_command_table,
    plan_split,
)
from amr.logic.dataplane.reply_merge import (
    choose_random_key,
    merge_concat,
    merge_first,
    merge_in_order,
    merge_scan,
    merge_sum,
    parse_scan_cursor,
    render_scan_cursor,
)
from amr.logic.keyspace.keyslot import choose_key_slot, crc16
from amr.logic.resp.frames import ReplyFrameError, ReplyFramer, render_command, split_aggregate
from amr.model.routes import ClusterNode

# --- keyslot ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        (b"foo", 12182),
        (b"bar", 5061),
        (b"123456789", 0x31C3 & 16383),
        (b"", 0),
        (b"{}foo", crc16(b"{}foo") & 16383),
    ],
)
def test_key_slots_match_the_engine(key: bytes, slot: int) -> None:
    assert choose_key_slot(key) == slot


def test_hash_tags_keep_related_keys_in_one_slot() -> None:
    assert choose_key_slot(b"{user1000}.following") == choose_key_slot(b"{user1000}.followers")
    assert choose_key_slot(b"{user1000}.following") == choose_key_slot(b"user1000")
    # Only the first {...} counts, and an empty one means the whole key.
    assert choose_key_slot(b"foo{}{bar}") == crc16(b"foo{}{bar}") & 16383
    assert choose_key_slot(b"foo{{bar}}zap") == choose_key_slot(b"{bar")
    assert crc16(b"123456789") == 0x31C3


# --- framing ----------------------------------------------------------------------------------

STREAM = [
    b"+OK\r\n",
    b"-ERR wrong\r\n",
    b":42\r\n",
    b"$3\r\nbar\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$2\r\n\r\n\r\n",  # a bulk that holds CRLF, nested array
    b"_\r\n",
    b",3.14\r\n",
    b"#t\r\n",
    b"(12345678901234567890\r\n",
    b"!5\r\nerr x\r\n",
    b"=8\r\ntxt:abcd\r\n",
    b"%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n~1\r\n:2\r\n",
    b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",  # an attribute travels with the reply it annotates
    b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
    b"*1\r\n|1\r\n+k\r\n+v\r\n:7\r\n",
]


def test_framer_returns_each_reply_byte_exact_whole_or_split_anywhere() -> None:
    data = b"".join(STREAM)
    assert ReplyFramer().feed(data) == STREAM
    rng = random.Random(7)
    for _ in range(200):
        framer = ReplyFramer()
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 9)
            out += framer.feed(data[pos : pos + step])
            pos += step
        assert out == STREAM and framer.buffered == 0


def test_framer_keeps_an_incomplete_reply_and_refuses_what_is_not_resp() -> None:
    framer = ReplyFramer()
    assert framer.feed(b"$5\r\nhel") == [] and framer.buffered == 7
    assert framer.feed(b"lo\r\n+OK\r\n") == [b"$5\r\nhello\r\n", b"+OK\r\n"]
    with pytest.raises(ReplyFrameError):
        ReplyFramer().feed(b"?what\r\n")
    with pytest.raises(ReplyFrameError):
        ReplyFramer().feed(b"$x\r\n")


def test_split_aggregate_and_render_command() -> None:
    assert split_aggregate(b"*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n") == [
        b"$1\r\na\r\n",
        b"$-1\r\n",
        b"*1\r\n:1\r\n",
    ]
    assert split_aggregate(b"*-1\r\n") == []
    assert render_command([b"SET", b"k", b""]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"


# --- classification and keys ------------------------------------------------------------------

# What COMMAND INFO says of a few commands (name, arity, flags, first, last, step, ..., subcommands).
TABLE = parse_command_table(
    [
        [b"get", 2, [b"readonly"], 1, 1, 1, [], [], [], []],
        [b"set", -3, [b"write"], 1, 1, 1, [], [], [], []],
        [b"mget", -2, [b"readonly"], 1, -1, 1, [], [], [], []],
        [b"mset", -3, [b"write"], 1, -1, 2, [], [], [], []],
        [b"sunionstore", -3, [b"write"], 1, -1, 1, [], [], [], []],
        [b"ping", -1, [], 0, 0, 0, [], [], [], []],
        [b"eval", -3, [b"movablekeys"], 0, 0, 0, [], [], [], []],
        [b"zunionstore", -4, [b"movablekeys"], 1, 1, 1, [], [], [], []],
        [b"xread", -4, [b"movablekeys"], 0, 0, 0, [], [], [], []],
        [b"sort", -2, [b"movablekeys"], 1, 1, 1, [], [], [], []],
        [b"object", -2, [], 0, 0, 0, [], [], [], [[b"object|encoding", 3, [], 2, 2, 1, [], [], [], []]]],
        "not an entry",
    ]
)


def test_command_table_is_read_from_command_info() -> None:
    assert TABLE[b"get"] == KeySpec(1, 1, 1)
    assert TABLE[b"eval"].movable and TABLE[b"object"].container
    assert TABLE[b"object|encoding"] == KeySpec(2, 2, 1)


@pytest.mark.parametrize(
    ("command", "kind", "keys"),
    [
        (b"GET k", KEYED, [b"k"]),
        (b"SET k v EX 10", KEYED, [b"k"]),
        (b"MSET a 1 b 2", MSET, [b"a", b"b"]),
        (b"MGET a b c", MGET, [b"a", b"b", b"c"]),
        (b"SUNIONSTORE d a b", KEYED, [b"d", b"a", b"b"]),
        (b"PING", KEYED, []),
        (b"EVAL script 2 k1 k2 a1", KEYED, [b"k1", b"k2"]),
        (b"EVALSHA sha 0 a1", KEYED, []),
        (b"FCALL fn 1 k a", KEYED, [b"k"]),
        (b"ZUNIONSTORE d 2 a b WEIGHTS 1 2", KEYED, [b"d", b"a", b"b"]),
        (b"ZINTER 2 a b", KEYED, [b"a", b"b"]),
        (b"BLMPOP 0 2 a b LEFT", KEYED, [b"a", b"b"]),
        (b"XREAD COUNT 2 STREAMS s1 s2 0 0", KEYED, [b"s1", b"s2"]),
        (b"XREADGROUP GROUP g c STREAMS s >", KEYED, [b"s"]),
        (b"SORT src BY w STORE dst", KEYED, [b"src", b"dst"]),
        (b"OBJECT ENCODING k", KEYED, [b"k"]),
        (b"NOSUCHCOMMAND x", KEYED, []),
        (b"DEL a b", SPLIT_SUM, None),
        (b"unlink a", SPLIT_SUM, None),
        (b"EXISTS a", SPLIT_SUM, None),
        (b"TOUCH a", SPLIT_SUM, None),
        (b"DBSIZE", ALL_SUM, None),
        (b"FLUSHDB", ALL_FIRST, None),
        (b"FLUSHALL ASYNC", ALL_FIRST, None),
        (b"SCRIPT LOAD x", ALL_FIRST, None),
        (b"SCRIPT EXISTS x", KEYED, []),
        (b"FUNCTION LOAD x", ALL_FIRST, None),
        (b"KEYS *", KEYS, None),
        (b"SCAN 0", SCAN, None),
        (b"INFO keyspace", INFO, None),
        (b"CLUSTER SLOTS", BLOCKED, None),
        (b"MULTI", MULTI, None),
        (b"AUTH pw", AUTH, None),
        (b"HELLO 3", AUTH, None),
        (b"SSUBSCRIBE c", SUBSCRIBE, None),
    ],
)
def test_commands_are_classified_and_their_keys_found(
    command: bytes, kind: int, keys: list[bytes] | None
) -> None:
    args = command.split()
    name = args[0].lower()
    assert choose_kind(name, args) == kind
    if keys is not None:
        assert choose_keys(name, args, TABLE) == keys


def test_slots_of_keys_and_splits_per_slot() -> None:
    assert choose_slot([]) == -1
    assert choose_slot([b"{u}a", b"{u}b"]) == choose_key_slot(b"u")
    assert choose_slot([b"foo", b"bar"]) == -2
    groups = plan_split(MSET, [b"MSET", b"foo", b"1", b"bar", b"2", b"{foo}x", b"3"])
    assert groups == {12182: [0, 2], 5061: [1]}
    assert plan_split(MSET, [b"MSET", b"foo"]) is None
    assert plan_split(SPLIT_SUM, [b"DEL"]) is None
    assert plan_split(MGET, [b"MGET", b"bar", b"foo", b"bar"]) == {5061: [0, 2], 12182: [1]}


# --- merges -----------------------------------------------------------------------------------


def test_merges_sum_order_concatenate_and_let_errors_win() -> None:
    assert merge_sum([b":1\r\n", b":2\r\n", b":0\r\n"]) == b":3\r\n"
    assert merge_sum([b":1\r\n", b"-ERR x\r\n"]) == b"-ERR x\r\n"
    assert merge_first([b"+OK\r\n", b"+OK\r\n"]) == b"+OK\r\n"
    assert merge_first([b"+OK\r\n", b"-MISCONF\r\n"]) == b"-MISCONF\r\n"
    frames = [b"*2\r\n$1\r\na\r\n$-1\r\n", b"*1\r\n_\r\n"]
    assert merge_in_order(frames, [[0, 2], [1]], 3) == b"*3\r\n$1\r\na\r\n_\r\n$-1\r\n"
    assert merge_concat([b"*1\r\n$1\r\na\r\n", b"*0\r\n", b"*2\r\n$1\r\nb\r\n$1\r\nc\r\n"]) == (
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    )
    rng = random.Random(1)
    assert choose_random_key([b"$-1\r\n", b"$1\r\nk\r\n", b"$-1\r\n"], rng) == b"$1\r\nk\r\n"
    assert choose_random_key([b"_\r\n", b"_\r\n"], rng) == b"_\r\n"


@pytest.mark.parametrize("shards", [1, 3, 4])
def test_scan_cursors_round_trip_and_walk_the_shards(shards: int) -> None:
    for node_cursor in (0, 1, 17, 2**63):
        for shard in range(shards):
            cursor = render_scan_cursor(node_cursor, shard, shards)
            assert parse_scan_cursor(b"%d" % cursor, shards) == (node_cursor, shard)
    assert parse_scan_cursor(b"-1", shards) is None and parse_scan_cursor(b"x", shards) is None
    keys = b"*1\r\n$1\r\nk\r\n"
    # A node cursor that is not done stays on its shard; 0 moves on; the last shard's 0 ends.
    assert (
        merge_scan(b"*2\r\n$2\r\n17\r\n" + keys, 0, shards)
        == b"*2\r\n$%d\r\n%d\r\n" % (len(str(17 * shards)), 17 * shards) + keys
    )
    last = merge_scan(b"*2\r\n$1\r\n0\r\n" + keys, shards - 1, shards)
    assert last == b"*2\r\n$1\r\n0\r\n" + keys
    if shards > 1:
        assert merge_scan(b"*2\r\n$1\r\n0\r\n" + keys, 0, shards) == b"*2\r\n$1\r\n1\r\n" + keys


# --- slot map and redirects -------------------------------------------------------------------

NODES = (
    ClusterNode("/run/a.sock", 8500, 0),
    ClusterNode("/run/b.sock", 8501, 1),
    ClusterNode("/run/c.sock", 8502, 1),
)


def test_slot_map_maps_announced_ports_to_sockets_in_shard_order() -> None:
    reply = [
        [8192, 16383, [b"localhost", 8502, b"id-c"], [b"localhost", 8501, b"id-b"]],
        [0, 8191, [b"localhost", 8500, b"id-a"]],
    ]
    slot_map = parse_cluster_slots(reply, NODES)
    assert slot_map.primaries == ("/run/a.sock", "/run/c.sock")
    assert slot_map.socket_for(0) == "/run/a.sock" and slot_map.socket_for(16383) == "/run/c.sock"
    slot_map.moved(0, "/run/c.sock")
    assert slot_map.socket_for(0) == "/run/c.sock"
    unknown = parse_cluster_slots([[0, 100, [b"localhost", 9999, b"x"]]], NODES)
    assert unknown.primaries == () and unknown.socket_for(50) is None
    with pytest.raises(ValueError):
        parse_cluster_slots(b"nope", NODES)


def test_redirects_are_parsed() -> None:
    assert parse_redirect(b"-MOVED 3999 localhost:8501\r\n") == (b"MOVED", 3999, 8501)
    assert parse_redirect(b"-ASK 1 127.0.0.1:8500\r\n") == (b"ASK", 1, 8500)
    assert parse_redirect(b"-ERR x\r\n") is None
    assert parse_redirect(b"-MOVED x\r\n") is None
