"""Putting one reply together from the replies of several shards, for the commands the router splits
or fans out. Each merge takes the shards' reply frames (exact bytes) and returns the client's reply
frame; the first error any shard returned wins, as it would on a single node."""

from __future__ import annotations

import random

from amr.logic.resp.frames import parse_bulk, parse_integer, render_bulk, split_aggregate

INVALID_CURSOR_REPLY = b"-ERR invalid cursor\r\n"


def first_error(frames: list[bytes]) -> bytes | None:
    """The first error reply among the shards' replies (None if none failed)."""
    for frame in frames:
        if frame[:1] in (b"-", b"!"):
            return frame
    return None


def merge_sum(frames: list[bytes]) -> bytes:
    """DEL/UNLINK/EXISTS/TOUCH/DBSIZE: the sum of the shards' integers."""
    err = first_error(frames)
    if err is not None:
        return err
    return b":%d\r\n" % sum(parse_integer(f) or 0 for f in frames)


def merge_first(frames: list[bytes]) -> bytes:
    """MSET, FLUSHALL, FLUSHDB, SCRIPT LOAD...: the first shard's reply when none failed."""
    err = first_error(frames)
    return err if err is not None else frames[0]


def merge_in_order(frames: list[bytes], positions: list[list[int]], total: int) -> bytes:
    """MGET: each shard answered an array for the keys at ``positions[i]`` of the original command;
    the client gets one array in its own key order."""
    err = first_error(frames)
    if err is not None:
        return err
    values: list[bytes] = [b""] * total
    for frame, where in zip(frames, positions, strict=True):
        for index, value in zip(where, split_aggregate(frame), strict=True):
            values[index] = value
    return b"*%d\r\n" % total + b"".join(values)


def merge_concat(frames: list[bytes]) -> bytes:
    """KEYS: every shard's array, one after the other."""
    err = first_error(frames)
    if err is not None:
        return err
    items = [item for frame in frames for item in split_aggregate(frame)]
    return b"*%d\r\n" % len(items) + b"".join(items)


def choose_random_key(frames: list[bytes], rng: random.Random) -> bytes:
    """RANDOMKEY: one shard's key, at random among the shards that have keys (null when none does)."""
    err = first_error(frames)
    if err is not None:
        return err
    found = [f for f in frames if parse_bulk(f) is not None]
    return rng.choice(found) if found else frames[0]


def render_scan_cursor(node_cursor: int, shard: int, shards: int) -> int:
    """The cursor the client sees: the node's cursor and the shard it belongs to in one number
    (``node_cursor * shards + shard``), so cursor 0 still means start and end."""
    return node_cursor * shards + shard


def parse_scan_cursor(cursor: bytes, shards: int) -> tuple[int, int] | None:
    """The (node cursor, shard index) a client cursor stands for; None if it is not a cursor."""
    if not cursor.isdigit():
        return None
    value = int(cursor)
    return value // shards, value % shards


def merge_scan(frame: bytes, shard: int, shards: int) -> bytes:
    """SCAN: one shard's reply with its cursor turned into the client's: a node cursor of 0 moves
    on to the next shard (whose scan starts at 0), and after the last shard the scan is done."""
    if frame[:1] in (b"-", b"!"):
        return frame
    cursor_frame, keys_frame = split_aggregate(frame)
    node_cursor = int(parse_bulk(cursor_frame) or b"0")
    if node_cursor != 0:
        value = render_scan_cursor(node_cursor, shard, shards)
    else:
        value = shard + 1 if shard + 1 < shards else 0
    return b"*2\r\n" + render_bulk(b"%d" % value) + keys_frame
