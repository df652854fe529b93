"""Pub/sub through an EnterpriseCluster endpoint: where subscriptions and PUBLISH go, and how the
shards' answers become the database's.

**PUBLISH's count.** In a Valkey cluster PUBLISH reaches every node over the cluster bus, but its
reply counts only the receivers on the node that ran it, and PUBSUB NUMSUB/NUMPAT/CHANNELS are just
as local. Fanning PUBLISH out would deliver each message once per shard; publishing on one node and
counting receivers with PUBSUB NUMSUB fanned out cannot count pattern subscribers (no command says
which patterns match a channel) and costs a round trip to every shard per message. So the endpoint
keeps every SUBSCRIBE/PSUBSCRIBE connection on one node, the *pub/sub node* (the primary serving
slot 0, which every gateway process finds in its own slot map), and runs PUBLISH there: the engine's
own count is then every receiver in the database, at the cost of one command. Sharded pub/sub
(SSUBSCRIBE/SPUBLISH) stays on each channel's shard, where the engine counts it already. Should
slot 0 change hands while subscribers stay connected to its old node (a scale-out moving it), their
messages are still delivered (the bus carries them) but PUBLISH does not count them until they
reconnect: a failover of that node closes them, and clients subscribe again on reconnect.

**PUBSUB queries** are fanned out to every primary and merged (``choose_pubsub_merge``): correct
wherever each subscriber is, since each one is on exactly one node.

**Sharded subscriptions across shards** on one client connection get a node connection per shard;
each node's SSUBSCRIBE/SUNSUBSCRIBE confirmation counts only its own channels, so the count the
client sees is made the total (``render_confirmation_count``).
"""

from __future__ import annotations

from collections.abc import Callable

from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.reply_merge import first_error
from amr.logic.resp.frames import split_aggregate

Merge = Callable[[list[bytes]], bytes]

# A node connection in pub/sub mode that was redirected: the command is the client's to send again
# (a subscription cannot be retried behind its back: its confirmations are the client's to read).
STREAM_REDIRECT_REPLY = b"-TRYAGAIN the channel's shard is moving; send the command again\r\n"
_SHARD_CONFIRMATIONS = (b"$10\r\nssubscribe\r\n", b"$12\r\nsunsubscribe\r\n")


# The slot whose primary is the pub/sub node.
PUBSUB_SLOT = 0


def choose_pubsub_node(slot_map: SlotMap) -> str:
    """The node every SUBSCRIBE/PSUBSCRIBE connection and every PUBLISH goes to: the primary
    serving ``PUBSUB_SLOT`` (the first primary while no node serves it, as for any slot)."""
    index = slot_map.owner[PUBSUB_SLOT]
    return slot_map.primaries[index if index >= 0 else 0]


def parse_confirmation_count(frame: bytes) -> int | None:
    """The subscription count of an SSUBSCRIBE/SUNSUBSCRIBE confirmation (a three-element array or
    push: kind, channel, count); None for any other frame."""
    if frame[:4] not in (b"*3\r\n", b">3\r\n") or not frame.startswith(_SHARD_CONFIRMATIONS, 4):
        return None
    last = frame.rfind(b"\r\n:", 0, len(frame) - 2)
    if last < 0:
        return None
    try:
        return int(frame[last + 3 : -2])
    except ValueError:
        return None


def render_confirmation_count(frame: bytes, count: int) -> bytes:
    """A confirmation (``parse_confirmation_count`` read it) with its count replaced."""
    last = frame.rfind(b"\r\n:", 0, len(frame) - 2)
    return frame[: last + 3] + b"%d\r\n" % count


def merge_channel_lists(frames: list[bytes]) -> bytes:
    """PUBSUB CHANNELS/SHARDCHANNELS: every channel any shard has, once, in the order first seen."""
    err = first_error(frames)
    if err is not None:
        return err
    seen: dict[bytes, None] = {}
    for frame in frames:
        for item in split_aggregate(frame):
            seen.setdefault(item)
    return b"%c%d\r\n" % (frames[0][0], len(seen)) + b"".join(seen)


def merge_channel_counts(frames: list[bytes]) -> bytes:
    """PUBSUB NUMSUB/SHARDNUMSUB: each channel (as the client named them, in its order) with its
    subscribers summed over the shards; an array or a RESP3 map, as the first shard answered."""
    err = first_error(frames)
    if err is not None:
        return err
    parts = [split_aggregate(f) for f in frames]
    first = parts[0]
    out: list[bytes] = []
    for i in range(0, len(first) - 1, 2):
        total = sum(int(p[i + 1][1:-2]) for p in parts if len(p) > i + 1 and p[i + 1][:1] == b":")
        out += [first[i], b":%d\r\n" % total]
    count = len(out) // 2 if frames[0][:1] == b"%" else len(out)
    return b"%c%d\r\n" % (frames[0][0], count) + b"".join(out)


def merge_pattern_counts(frames: list[bytes]) -> bytes:
    """PUBSUB NUMPAT: the shards' pattern subscriptions summed."""
    err = first_error(frames)
    if err is not None:
        return err
    return b":%d\r\n" % sum(int(f[1:-2]) for f in frames if f[:1] == b":")


_PUBSUB_MERGES: dict[bytes, Merge] = {
    b"channels": merge_channel_lists,
    b"shardchannels": merge_channel_lists,
    b"numsub": merge_channel_counts,
    b"shardnumsub": merge_channel_counts,
    b"numpat": merge_pattern_counts,
}


def choose_pubsub_merge(args: list[bytes]) -> Merge | None:
    """How a PUBSUB command's answers from every shard become one (None: one node answers it, as
    for HELP, a wrong arity or an unknown subcommand)."""
    if len(args) < 2:
        return None
    return _PUBSUB_MERGES.get(args[1].lower())
