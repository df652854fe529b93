"""The router's commands that are not one command to one node by its keys: split per slot (DEL,
UNLINK, EXISTS, TOUCH, MGET, MSET), fanned out to every shard (DBSIZE, FLUSHALL/FLUSHDB, KEYS,
RANDOMKEY, INFO, SCRIPT LOAD/FLUSH, FUNCTION ..., PUBSUB queries), SCAN shard by shard, AUTH/HELLO on
every node connection, CLUSTER refused, WATCH/UNWATCH, EXEC/DISCARD without MULTI, PUBLISH to the
pub/sub node and the switch to pub/sub or MONITOR mode.

Each runs a route decision (``amr.logic.dataplane.route_decision``) as it is: ``run_special`` picks the one
executor of the decision's kind. They take the client's link table and reply queue, not the router.
"""

from __future__ import annotations

from collections.abc import Callable

from amr.gateway.routing.items import Link, Merged, Part, Pending
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.replies import ReplyQueue
from amr.gateway.routing.streams import Streams
from amr.logic.dataplane.auth import REFUSED_AUTH, classify_command
from amr.logic.dataplane.command_routing import (
    ALL_FIRST,
    ALL_SUM,
    AUTH,
    BLOCKED,
    CLIENT,
    CLIENTS,
    CROSSSLOT_REPLY,
    DISCARD,
    EXEC,
    INFO,
    KEYED,
    KEYS,
    MGET,
    MONITOR,
    MSET,
    PUBLISH,
    PUBSUB,
    RANDOMKEY,
    SCAN,
    SPLIT_SUM,
    SUBSCRIBE,
    UNWATCH,
    WATCH,
    plan_split,
)
from amr.logic.dataplane.info_merge import merge_info
from amr.logic.dataplane.pubsub import choose_pubsub_merge
from amr.logic.dataplane.reply_merge import (
    INVALID_CURSOR_REPLY,
    choose_random_key,
    merge_concat,
    merge_first,
    merge_in_order,
    merge_scan,
    merge_sum,
    parse_scan_cursor,
)
from amr.logic.dataplane.route_decision import Route
from amr.logic.dataplane.tracking import TRACKING_REPLAY, choose_caching_reply, plan_tracking
from amr.logic.resp.frames import render_command

OK = b"+OK\r\n"
# A WATCH must stay on the node its transaction will run on: never redirected.
NO_RETRY = 1 << 30

Special = Callable[[LinkTable, ReplyQueue, Route, list[bytes], bytes], None]


def _error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


def _arity(name: bytes) -> bytes:
    return b"-ERR wrong number of arguments for '%s' command\r\n" % name


def run_special(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """Run a command the route decision did not send to one node by its slot."""
    _EXECUTORS[route[0]](table, replies, route, args, raw)


def split(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """DEL/UNLINK/EXISTS/TOUCH/MGET/MSET: whole to the node of its one slot, else one part per slot."""
    kind, slot, socket, _ = route
    if kind == MSET and len(args) % 2 == 0:
        slot, socket = -1, ""  # malformed: any node answers the arity error
    groups = plan_split(kind, args) if slot == -2 else None
    if groups is None:
        # One slot, no keys or malformed: one node runs it whole.
        p = Pending(raw, slot)
        replies.fifo.append(p)
        table.to(socket).send(raw, p)
        return
    head = [args[0]]
    positions = list(groups.values())
    if kind == MGET:
        total = len(args) - 1
        merged = Merged(len(groups), lambda frames: merge_in_order(frames, positions, total))
    else:
        merged = Merged(len(groups), merge_sum if kind != MSET else merge_first)
    replies.fifo.append(merged)
    for index, (part_slot, where) in enumerate(groups.items()):
        if kind == MSET:
            part_args = head + [a for i in where for a in (args[1 + 2 * i], args[2 + 2 * i])]
        else:
            part_args = head + [args[1 + i] for i in where]
        part_raw = render_command(part_args)
        table.slot_link(part_slot).send(part_raw, Part(merged, index, part_raw, part_slot))


def fan_out(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """Send ``raw`` to every shard's primary; the kind's merge makes the reply."""
    kind = route[0]
    merge: Callable[[list[bytes]], bytes]
    if kind == ALL_SUM:
        merge = merge_sum
    elif kind == KEYS:
        merge = merge_concat
    elif kind == INFO:
        merge = merge_info
    elif kind == RANDOMKEY:
        rng = table.rng
        merge = lambda frames: choose_random_key(frames, rng)  # noqa: E731
    else:
        merge = merge_first
    primaries = table.topology.slot_map.primaries
    merged = Merged(len(primaries), merge)
    replies.fifo.append(merged)
    for index, socket in enumerate(primaries):
        table.link(socket).send(raw, Part(merged, index, raw, -1))


def scan(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """SCAN: the shard its cursor names, with a cursor that names the next one."""
    primaries = table.topology.slot_map.primaries
    shards = len(primaries)
    where = parse_scan_cursor(args[1], shards) if len(args) > 1 else None
    if where is None:
        replies.fifo.append(Pending(reply=INVALID_CURSOR_REPLY if len(args) > 1 else _arity(b"scan")))
        return
    node_cursor, shard = where
    raw = render_command([args[0], b"%d" % node_cursor, *args[2:]])
    merged = Merged(1, lambda frames: merge_scan(frames[0], shard, shards))
    replies.fifo.append(merged)
    table.link(primaries[shard]).send(raw, Part(merged, 0, raw, -1))


def refuse_cluster(
    table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes
) -> None:
    """CLUSTER ...: not on an EnterpriseCluster endpoint."""
    sub = args[1].decode("utf-8", "replace")[:64] if len(args) > 1 else ""
    replies.fifo.append(
        Pending(
            reply=_error(
                f"ERR unknown command 'CLUSTER', with args beginning with: '{sub}' "
                "(CLUSTER commands are not available on an EnterpriseCluster endpoint)"
            )
        )
    )


def auth(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """AUTH/HELLO after authentication: every open node connection runs it (so they all act as the
    same user and protocol), and new ones replay it once it has succeeded."""
    name = args[0].upper()
    if classify_command(tuple(args)) == "internal":
        # amr's own users are refused here too: the nodes get an AUTH they can only refuse (and
        # answer WRONGPASS), never the internal name or its password; it is never replayed.
        raw = REFUSED_AUTH
    links: list[Link] = [lk for lk in table.links.values() if not lk.closed]
    links = links or [table.any_link()]

    def merge(frames: list[bytes]) -> bytes:
        reply = merge_first(frames)
        if reply[:1] not in (b"-", b"!"):
            replay = table.replay
            replay.pop(name, None)
            replay[name] = tuple(args)
            # Tracking is replayed last: a new connection runs it once authenticated.
            tracking = replay.pop(TRACKING_REPLAY, None)
            if tracking is not None:
                replay[TRACKING_REPLAY] = tracking
        return reply

    merged = Merged(len(links), merge)
    replies.fifo.append(merged)
    for index, link in enumerate(links):
        link.send(raw, Part(merged, index, raw, -1))


def watch(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """WATCH: on the node of its keys' slot, where the transaction will then run."""
    _, slot, socket, _ = route
    if slot == -2 or (table.watch_slot >= 0 and slot != table.watch_slot):
        replies.fifo.append(Pending(reply=CROSSSLOT_REPLY))
        return
    p = Pending(raw, slot)
    p.tries = NO_RETRY
    replies.fifo.append(p)
    link = table.to(socket)
    link.send(raw, p)
    if slot >= 0:
        table.watch_link, table.watch_slot = link, slot


def unwatch(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """UNWATCH: on the watched node, if any."""
    link, table.watch_link, table.watch_slot = table.watch_link, None, -1
    p = Pending(raw)
    replies.fifo.append(p)
    if link is not None and not link.closed:
        link.send(raw, p)
    else:
        p.reply = OK


def client(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """CLIENT TRACKING on every node connection; CLIENT CACHING answered here (both
    ``amr.logic.dataplane.tracking``); any other CLIENT subcommand on one node, as a keyless command."""
    sub = args[1].lower() if len(args) > 1 else b""
    if sub == b"tracking":
        tracking(table, replies, args, raw)
    elif sub == b"caching":
        replies.fifo.append(Pending(reply=choose_caching_reply(args, table.tracking)))
    else:
        to_any_node(table, replies, route, args, raw)


def tracking(table: LinkTable, replies: ReplyQueue, args: list[bytes], raw: bytes) -> None:
    """CLIENT TRACKING ON|OFF: refused (REDIRECT), or run on every node connection of the client's
    and replayed on the ones it opens later. It is replayed from now on, so that a connection opened
    by the commands pipelined after it tracks too; an error takes it back."""
    plan = plan_tracking(args, table.tracking)
    if plan.reply is not None:
        replies.fifo.append(Pending(reply=plan.reply))
        return
    if plan.node_args is None:
        to_any_node(table, replies, (KEYED, -1, "", False), args, raw)
        return
    links: list[Link] = [lk for lk in table.links.values() if not lk.closed] or [table.any_link()]
    node_raw = render_command(plan.node_args)
    replay = table.replay
    before = replay.pop(TRACKING_REPLAY, None)
    if plan.mode is not None:
        replay[TRACKING_REPLAY] = plan.node_args

    def merge(frames: list[bytes]) -> bytes:
        reply = merge_first(frames)
        if reply[:1] in (b"-", b"!"):
            replay.pop(TRACKING_REPLAY, None)
            if before is not None:
                replay[TRACKING_REPLAY] = before
        else:
            table.tracking = plan.mode
        return reply

    merged = Merged(len(links), merge)
    replies.fifo.append(merged)
    for index, link in enumerate(links):
        link.send(node_raw, Part(merged, index, node_raw, -1))


def to_any_node(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """A keyless command on any node (EXEC or DISCARD without MULTI: the engine's error)."""
    p = Pending(raw)
    replies.fifo.append(p)
    table.any_link().send(raw, p)


def subscribe(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """The client subscribes: from now on its connection is in pub/sub mode (``streams``), its
    node's messages passed on once the replies it is still owed have been written."""
    table.pubsub = streams = Streams(table, replies)
    streams.command(args, raw)


def monitor(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """MONITOR: every shard's commands, from now on (``streams``)."""
    table.pubsub = streams = Streams(table, replies, monitor=True)
    streams.start_monitor(raw)


def to_node(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """PUBLISH: to the node the route names (the pub/sub node, where its count is the database's)."""
    p = Pending(raw)
    replies.fifo.append(p)
    table.to(route[2]).send(raw, p)


def pubsub_query(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB: every shard, answers merged
    (``amr.logic.dataplane.pubsub``); anything else (HELP, an arity error) from one node."""
    merge = choose_pubsub_merge(args)
    if merge is None:
        to_any_node(table, replies, route, args, raw)
        return
    primaries = table.topology.slot_map.primaries
    merged = Merged(len(primaries), merge)
    replies.fifo.append(merged)
    for index, socket in enumerate(primaries):
        table.link(socket).send(raw, Part(merged, index, raw, -1))


def clients(table: LinkTable, replies: ReplyQueue, route: Route, args: list[bytes], raw: bytes) -> None:
    """CLIENT LIST/INFO/KILL/ID: answered by the gateway over the database's connections, in order."""
    pending = Pending()
    replies.fifo.append(pending)

    def done(reply: bytes, close_after: bool) -> None:
        if table.session.closed:
            return
        pending.reply = reply
        replies.flush()
        if close_after:  # it killed itself: closed once its reply is written
            replies.client.close_for("client_killed")

    replies.client.answer_clients(tuple(args), table.topology.slot_map.primaries[0], done)


_EXECUTORS: dict[int, Special] = {
    SPLIT_SUM: split, MGET: split, MSET: split,
    ALL_SUM: fan_out, ALL_FIRST: fan_out, KEYS: fan_out, RANDOMKEY: fan_out, INFO: fan_out,
    SCAN: scan, BLOCKED: refuse_cluster, AUTH: auth, SUBSCRIBE: subscribe, WATCH: watch,
    UNWATCH: unwatch, EXEC: to_any_node, DISCARD: to_any_node, PUBLISH: to_node, PUBSUB: pubsub_query,
    MONITOR: monitor, CLIENT: client, CLIENTS: clients,
}  # fmt: skip
