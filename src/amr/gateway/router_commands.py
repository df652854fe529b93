"""The router's commands that are not one command to one node: split per slot (DEL, UNLINK,
EXISTS, TOUCH, MGET, MSET), fanned out to every shard (DBSIZE, FLUSHALL/FLUSHDB, KEYS, RANDOMKEY,
INFO, SCRIPT LOAD/FLUSH, FUNCTION ...), SCAN shard by shard, AUTH/HELLO on every node connection,
CLUSTER refused, WATCH, MULTI, QUIT and the switch to pub/sub."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from amr.gateway.router_links import Link, Merged, NodeLink, Part, Pending, Swallow
from amr.gateway.router_txn import Transaction
from amr.logic.command_routing import (
    ALL_FIRST,
    ALL_SUM,
    AUTH,
    BLOCKED,
    CROSSSLOT_REPLY,
    INFO,
    KEYS,
    MGET,
    MSET,
    MULTI,
    QUIT,
    RANDOMKEY,
    SCAN,
    SUBSCRIBE,
    UNWATCH,
    WATCH,
    choose_slot,
    plan_split,
)
from amr.logic.gateway_auth import REFUSED_AUTH, classify_command
from amr.logic.keyslot import choose_key_slot
from amr.logic.reply_merge import (
    INVALID_CURSOR_REPLY,
    choose_random_key,
    merge_concat,
    merge_first,
    merge_in_order,
    merge_info,
    merge_scan,
    merge_sum,
    parse_scan_cursor,
)
from amr.logic.resp_frames import render_command

if TYPE_CHECKING:
    from amr.gateway.router import Router

OK = b"+OK\r\n"
# A WATCH must stay on the node its transaction will run on: never redirected.
NO_RETRY = 1 << 30


def _error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


def _arity(name: bytes) -> bytes:
    return b"-ERR wrong number of arguments for '%s' command\r\n" % name


def route_special(router: Router, kind: int, name: bytes, args: list[bytes], raw: bytes) -> None:
    if kind <= MSET:  # SPLIT_SUM, MGET, MSET
        split(router, kind, args, raw)
    elif kind in (ALL_SUM, ALL_FIRST, KEYS, RANDOMKEY, INFO):
        merge: Callable[[list[bytes]], bytes]
        if kind == ALL_SUM:
            merge = merge_sum
        elif kind == KEYS:
            merge = merge_concat
        elif kind == INFO:
            merge = merge_info
        elif kind == RANDOMKEY:
            rng = router.rng
            merge = lambda frames: choose_random_key(frames, rng)  # noqa: E731
        else:
            merge = merge_first
        fan_out(router, raw, merge)
    elif kind == SCAN:
        scan(router, args)
    elif kind == BLOCKED:
        sub = args[1].decode("utf-8", "replace")[:64] if len(args) > 1 else ""
        router.fifo.append(
            Pending(
                reply=_error(
                    f"ERR unknown command 'CLUSTER', with args beginning with: '{sub}' "
                    "(CLUSTER commands are not available on an EnterpriseCluster endpoint)"
                )
            )
        )
    elif kind == AUTH:
        auth(router, args, raw)
    elif kind == SUBSCRIBE:
        subscribe(router, name, args, raw)
    elif kind == QUIT:
        router.fifo.append(Pending(reply=OK))
        router.closing = True
    elif kind == MULTI:
        router.txn = Transaction(router, raw)
    elif kind == WATCH:
        watch(router, args, raw)
    elif kind == UNWATCH:
        link, router.watch_link, router.watch_slot = router.watch_link, None, -1
        p = Pending(raw)
        router.fifo.append(p)
        if link is not None and not link.closed:
            link.send(raw, p)
        else:
            p.reply = OK
    else:  # EXEC or DISCARD without MULTI: the engine's error
        p = Pending(raw)
        router.fifo.append(p)
        router.any_link().send(raw, p)


def split(router: Router, kind: int, args: list[bytes], raw: bytes) -> None:
    groups = plan_split(kind, args)
    if groups is None or len(groups) <= 1:
        slot = next(iter(groups)) if groups else -1
        p = Pending(raw, slot)
        router.fifo.append(p)
        (router.slot_link(slot) if slot >= 0 else router.any_link()).send(raw, p)
        return
    head = [args[0]]
    positions = list(groups.values())
    if kind == MGET:
        total = len(args) - 1
        merged = Merged(len(groups), lambda frames: merge_in_order(frames, positions, total))
    else:
        merged = Merged(len(groups), merge_sum if kind != MSET else merge_first)
    router.fifo.append(merged)
    for index, (slot, where) in enumerate(groups.items()):
        if kind == MSET:
            part_args = head + [a for i in where for a in (args[1 + 2 * i], args[2 + 2 * i])]
        else:
            part_args = head + [args[1 + i] for i in where]
        part_raw = render_command(part_args)
        router.slot_link(slot).send(part_raw, Part(merged, index, part_raw, slot))


def fan_out(router: Router, raw: bytes, merge: Callable[[list[bytes]], bytes]) -> None:
    """Send ``raw`` to every shard's primary; ``merge`` makes the reply."""
    primaries = router.topology.slot_map.primaries
    merged = Merged(len(primaries), merge)
    router.fifo.append(merged)
    for index, socket in enumerate(primaries):
        router.link(socket).send(raw, Part(merged, index, raw, -1))


def scan(router: Router, args: list[bytes]) -> None:
    primaries = router.topology.slot_map.primaries
    shards = len(primaries)
    where = parse_scan_cursor(args[1], shards) if len(args) > 1 else None
    if where is None:
        router.fifo.append(Pending(reply=INVALID_CURSOR_REPLY if len(args) > 1 else _arity(b"scan")))
        return
    node_cursor, shard = where
    raw = render_command([args[0], b"%d" % node_cursor, *args[2:]])
    merged = Merged(1, lambda frames: merge_scan(frames[0], shard, shards))
    router.fifo.append(merged)
    router.link(primaries[shard]).send(raw, Part(merged, 0, raw, -1))


def auth(router: Router, args: list[bytes], raw: bytes) -> None:
    """AUTH/HELLO after authentication: every open node connection runs it (so they all act as the
    same user and protocol), and new ones replay it once it has succeeded."""
    name = args[0].upper()
    if classify_command(tuple(args)) == "internal":
        # amr's own users are refused here too: the nodes get an AUTH they can only refuse (and
        # answer WRONGPASS), never the internal name or its password; it is never replayed.
        raw = REFUSED_AUTH
    links: list[Link] = [lk for lk in router.links.values() if not lk.closed and not lk.splice]
    links = links or [router.any_link()]

    def merge(frames: list[bytes]) -> bytes:
        reply = merge_first(frames)
        if reply[:1] not in (b"-", b"!"):
            router.replay.pop(name, None)
            router.replay[name] = tuple(args)
        return reply

    merged = Merged(len(links), merge)
    router.fifo.append(merged)
    for index, link in enumerate(links):
        link.send(raw, Part(merged, index, raw, -1))


def watch(router: Router, args: list[bytes], raw: bytes) -> None:
    slot = choose_slot(args[1:])
    if slot == -2 or (router.watch_slot >= 0 and slot != router.watch_slot):
        router.fifo.append(Pending(reply=CROSSSLOT_REPLY))
        return
    p = Pending(raw, slot)
    p.tries = NO_RETRY
    router.fifo.append(p)
    link = router.slot_link(slot) if slot >= 0 else router.any_link()
    link.send(raw, p)
    if slot >= 0:
        router.watch_link, router.watch_slot = link, slot


def subscribe(router: Router, name: bytes, args: list[bytes], raw: bytes) -> None:
    """The client subscribes: from now on it talks to one dedicated node connection, spliced both
    ways once the replies it is still owed have been written (PUBLISH propagates over the
    cluster bus, so any node delivers every message; SSUBSCRIBE goes to its channel's node)."""
    primaries = router.topology.slot_map.primaries
    if name == b"ssubscribe" and len(args) > 1:
        socket = router.topology.slot_map.socket_for(choose_key_slot(args[1])) or primaries[0]
    else:
        socket = primaries[router.rng.randrange(len(primaries))]
    link = NodeLink(router, socket)
    link.pubsub = True
    for replayed in router.replay.values():
        link.send(render_command(replayed), Swallow(router.replay_refused))
    link.early.append(raw)
    router.pubsub = link
    router.connect(link)
