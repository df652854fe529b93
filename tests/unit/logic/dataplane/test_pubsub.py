"""Pub/sub through an EnterpriseCluster endpoint: the pub/sub node, sharded confirmation counts and
PUBSUB answers merged over the shards."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.pubsub import (
    choose_pubsub_merge,
    choose_pubsub_node,
    merge_channel_counts,
    merge_channel_lists,
    merge_pattern_counts,
    parse_confirmation_count,
    render_confirmation_count,
)


def test_the_pubsub_node_is_the_one_serving_slot_0() -> None:
    assert choose_pubsub_node(SlotMap([1] + [0] * 16383, ("/a", "/b"))) == "/b"
    assert choose_pubsub_node(SlotMap([-1] * 16384, ("/a", "/b"))) == "/a"  # unserved: the first


@pytest.mark.parametrize(
    ("frame", "count"),
    [
        (b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n", 1),
        (b">3\r\n$10\r\nssubscribe\r\n$3\r\na:b\r\n:12\r\n", 12),  # RESP3 push; a ':' in the channel
        (b"*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n", 0),
        (b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n", 0),  # nothing was subscribed
        (b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n", 0),
        (b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", None),  # not sharded: the pub/sub node counts it
        (b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\nhi\r\n", None),
        (b":1\r\n", None),
        (b"+OK\r\n", None),
    ],
)
def test_sharded_confirmations_are_recognised_with_their_count(frame: bytes, count: int | None) -> None:
    assert parse_confirmation_count(frame) == count
    if count is not None:
        rewritten = render_confirmation_count(frame, count + 5)
        assert parse_confirmation_count(rewritten) == count + 5
        assert rewritten[: frame.rfind(b":")] == frame[: frame.rfind(b":")]


def _array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def _bulk(s: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(s), s)


@pytest.mark.parametrize(
    ("args", "frames", "merged"),
    [
        # CHANNELS: each channel once.
        (
            [b"PUBSUB", b"CHANNELS"],
            [_array(_bulk(b"a"), _bulk(b"b")), _array(), _array(_bulk(b"b"), _bulk(b"c"))],
            _array(_bulk(b"a"), _bulk(b"b"), _bulk(b"c")),
        ),
        ([b"pubsub", b"shardchannels"], [_array(_bulk(b"s1")), _array(_bulk(b"s2"))], _array(_bulk(b"s1"), _bulk(b"s2"))),
        # NUMSUB: per channel, in the client's order, summed.
        (
            [b"PUBSUB", b"NUMSUB", b"a", b"b"],
            [_array(_bulk(b"a"), b":1\r\n", _bulk(b"b"), b":0\r\n"), _array(_bulk(b"a"), b":2\r\n", _bulk(b"b"), b":0\r\n")],
            _array(_bulk(b"a"), b":3\r\n", _bulk(b"b"), b":0\r\n"),
        ),
        (
            [b"PUBSUB", b"SHARDNUMSUB", b"a"],
            [b"%1\r\n$1\r\na\r\n:0\r\n", b"%1\r\n$1\r\na\r\n:4\r\n"],  # a RESP3 map stays a map
            b"%1\r\n$1\r\na\r\n:4\r\n",
        ),
        ([b"PUBSUB", b"NUMSUB"], [_array(), _array()], _array()),
        ([b"PUBSUB", b"NUMPAT"], [b":2\r\n", b":0\r\n", b":1\r\n"], b":3\r\n"),
        # The first error wins.
        ([b"PUBSUB", b"NUMPAT"], [b":2\r\n", b"-NOPERM no\r\n"], b"-NOPERM no\r\n"),
    ],
)  # fmt: skip
def test_pubsub_answers_are_the_database_s(args: list[bytes], frames: list[bytes], merged: bytes) -> None:
    merge = choose_pubsub_merge(args)
    assert merge is not None and merge(frames) == merged


def test_other_pubsub_commands_are_answered_by_one_node() -> None:
    assert choose_pubsub_merge([b"PUBSUB"]) is None
    assert choose_pubsub_merge([b"PUBSUB", b"HELP"]) is None
    assert choose_pubsub_merge([b"PUBSUB", b"NOSUCH"]) is None
    assert {merge_channel_lists, merge_channel_counts, merge_pattern_counts} >= {
        choose_pubsub_merge([b"PUBSUB", sub]) for sub in (b"channels", b"numsub", b"numpat")
    }
