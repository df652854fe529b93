"""A client connection in pub/sub or MONITOR mode: what its nodes send comes when it comes, not as
replies to its commands, from as many nodes as it needs.

- **Pub/sub** (``amr.logic.dataplane.pubsub``): SUBSCRIBE/PSUBSCRIBE (and the client's other keyless
  commands from then on: PING, PUBLISH ...) go to the pub/sub node, where PUBLISH counts every
  subscriber; SSUBSCRIBE and SUNSUBSCRIBE go to their channels' shards, over one node connection per
  shard, and the subscription counts in their confirmations are made the client's total. A command
  on keys (RESP3 allows them on a subscribed connection) is refused: its shard's replies could
  overtake the others'.
- **MONITOR** runs on every primary; the client gets one ``+OK`` once all have answered, then every
  shard's lines as they come. Its later commands go to the pub/sub node, and one that names keys
  is answered as a monitoring connection is by the engine (it may not touch the keyspace).

Each node connection (``StreamLink``) frames what its node sends and passes it on whole, so frames
from several nodes interleave but never mix. Replies to the client's commands keep its order,
though they come from several nodes: before a command goes to another node connection than the
previous one (or is answered by the gateway), the previous one is sent ``PING <token>``, and the
command waits (``held``) until that ``pong`` is back, so every reply the previous node owed is in
(the ``pong`` is not passed on). Published messages are not held. A redirect (a channel's slot moving) reaches the client
as ``-TRYAGAIN``: never a MOVED naming an internal port. Replies still owed for commands sent before
the switch are written first (``ReplyQueue.pubsub_data``).
"""

from __future__ import annotations

import os
from collections import deque

from amr.gateway.routing.items import Merged, Part
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.replies import ReplyQueue
from amr.logic.dataplane.command_routing import CROSSSLOT_REPLY, choose_keys, choose_slot
from amr.logic.dataplane.pubsub import (
    STREAM_REDIRECT_REPLY,
    choose_pubsub_node,
    parse_confirmation_count,
    render_confirmation_count,
)
from amr.logic.dataplane.reply_merge import merge_first
from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command

# What the engine answers a monitoring connection's command that touches the keyspace.
MONITOR_KEYSPACE_REPLY = b"-ERR Replica can't interact with the keyspace\r\n"
_REDIRECTS = (b"-MOVED ", b"-ASK ")
# A pub/sub client whose commands wait for a barrier is not read past this many.
MAX_HELD = 1024


def _on_keys_refused(name: bytes) -> bytes:
    """The answer to a command on keys from a subscribed connection (RESP3 allows them)."""
    return (
        b"-ERR Can't execute '%s' on a subscribed connection of an EnterpriseCluster endpoint: it only "
        b"subscribes, publishes and pings; use another connection for commands on keys\r\n"
        % name[:64].replace(b"\r", b" ").replace(b"\n", b" ")
    )


class StreamLink(NodeLink):
    """A client's node connection in pub/sub or MONITOR mode: once what it owes is answered (the
    replayed AUTH/HELLO, MONITOR's ``+OK``), each frame its node sends goes to ``streams``."""

    __slots__ = ("streams",)

    def __init__(self, streams: Streams, table: LinkTable, socket: str) -> None:
        super().__init__(table, socket)
        self.streams = streams

    def write(self, raw: bytes) -> None:
        """A command whose answers come as stream frames (nothing owed for it)."""
        t = self.transport
        if t is None:
            self.early.append(raw)
        elif self.owner.batching:
            if not self.out:
                self.owner.dirty.append(self)
            self.out.append(raw)
        else:
            t.write(raw)

    def pushed(self, frame: bytes) -> None:
        self.streams.frame(self, frame)

    def unowed(self, frame: bytes) -> bool:
        self.streams.frame(self, frame)
        return True


class Streams:
    """The node connections of a client in pub/sub or MONITOR mode (``monitor``), by node socket."""

    __slots__ = (
        "table", "replies", "links", "shard_counts", "monitor", "quitting", "last", "barrier", "held",
        "token", "pongs",
    )  # fmt: skip

    def __init__(self, table: LinkTable, replies: ReplyQueue, monitor: bool = False) -> None:
        self.table = table
        self.replies = replies
        self.links: dict[str, StreamLink] = {}
        # Each node connection's sharded subscriptions, as its node last counted them.
        self.shard_counts: dict[str, int] = {}
        self.monitor = monitor
        self.quitting = False  # QUIT sent: the pub/sub node closing the connection ends the client's
        # The node connection the last command went to, while its replies may still be owed.
        self.last: StreamLink | None = None
        # The connection whose ``PING <token>`` is awaited; the client's commands held until then.
        self.barrier: StreamLink | None = None
        self.held: deque[tuple[list[bytes], bytes]] = deque()
        token = os.urandom(12).hex().encode()
        self.token = token
        # Its answer, subscribed (RESP2), or as a plain bulk string (RESP3, or no subscription left).
        self.pongs = (
            b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(token), token),
            b"$%d\r\n%s\r\n" % (len(token), token),
            b">2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(token), token),
        )

    def owns(self, link: NodeLink) -> bool:
        return self.links.get(link.socket) is link

    def stream_links(self) -> list[NodeLink]:
        return list(self.links.values())

    def _link(self, socket: str) -> StreamLink:
        link = self.links.get(socket)
        if link is None or link.closed:
            link = self.links[socket] = StreamLink(self, self.table, socket)
            self.table.replay_on(link)
            self.table.connect(link)
        return link

    def _main(self) -> StreamLink:
        return self._link(choose_pubsub_node(self.table.topology.slot_map))

    def start_monitor(self, raw: bytes) -> None:
        """MONITOR on every primary; one ``+OK`` for the client once every one has answered."""
        primaries = self.table.topology.slot_map.primaries
        merged = Merged(len(primaries), merge_first)
        self.replies.fifo.append(merged)
        for index, socket in enumerate(primaries):
            self._link(socket).send(raw, Part(merged, index, raw, -1))

    # -- the client's commands --------------------------------------------------------------------

    def command(self, args: list[bytes], raw: bytes) -> None:
        """A command of the client's, in this mode."""
        if self.barrier is not None:
            self.held.append((args, raw))
            if len(self.held) > MAX_HELD:
                self.replies.update_client_reading()
            return
        name = args[0].lower()
        if name == b"quit":
            self.quitting = True
        elif name == b"ssubscribe" and len(args) > 1 and not self.monitor:
            slot = choose_slot(args[1:])
            if slot == -2:
                self._answer(args, raw, CROSSSLOT_REPLY)
                return
            self._send(args, raw, self._slot_link(slot))
            return
        elif name == b"sunsubscribe" and not self.monitor:
            self._sunsubscribe(args, raw)
            return
        elif choose_keys(name, args, self.table.topology.commands):
            # Keys may be on any shard, and replies from several nodes could overtake each other.
            self._answer(args, raw, MONITOR_KEYSPACE_REPLY if self.monitor else _on_keys_refused(name))
            return
        self._send(args, raw, self._main())

    def holds_client(self) -> bool:
        """Whether too many of the client's commands wait for a barrier to read more."""
        return len(self.held) > MAX_HELD

    def _switching(self, args: list[bytes], raw: bytes, link: StreamLink | None) -> bool:
        """Whether the command must wait: it goes elsewhere (``link``, None: the gateway answers)
        than the previous one, whose replies may still be owed. Then the barrier is sent."""
        last = self.last
        if last is None or last is link or self.monitor:
            return False
        if last.closed:
            self.last = None
            return False
        self.barrier = last
        last.write(render_command([b"PING", self.token]))
        self.held.appendleft((args, raw))
        return True

    def _send(self, args: list[bytes], raw: bytes, link: StreamLink) -> None:
        if not self._switching(args, raw, link):
            link.write(raw)
            self.last = link

    def _answer(self, args: list[bytes], raw: bytes, reply: bytes) -> None:
        if not self._switching(args, raw, None):
            self.replies.pubsub_data(reply)

    def _slot_link(self, slot: int) -> StreamLink:
        slot_map = self.table.topology.slot_map
        return self._link(slot_map.socket_for(slot) or slot_map.primaries[0])

    def _sunsubscribe(self, args: list[bytes], raw: bytes) -> None:
        """SUNSUBSCRIBE: named channels on their shards (one command per slot, as the engine takes
        them); all of them on every connection that has some, or the pub/sub node's if none has."""
        if len(args) > 1:
            by_slot: dict[int, list[bytes]] = {}
            for channel in args[1:]:
                by_slot.setdefault(choose_key_slot(channel), []).append(channel)
            first, *others = by_slot.items()
            slot, channels = first
            if others:  # the other slots' channels once this one's replies are in
                rest = [args[0], *(c for _, more in others for c in more)]
                self.held.appendleft((rest, render_command(rest)))
            self._send([args[0], *channels], render_command([args[0], *channels]), self._slot_link(slot))
            if others and self.barrier is None:
                self._next()
            return
        holding = [self.links[s] for s, n in self.shard_counts.items() if n > 0 and s in self.links]
        if not holding:
            self._send(args, raw, self._main())
            return
        # One connection at a time: once its node answered, its count is 0 and the next one goes.
        self._send(args, raw, holding[0])
        if len(holding) > 1 and self.barrier is None:
            self.held.appendleft((args, raw))
            self._next()

    # -- what the nodes send ------------------------------------------------------------------------

    def _next(self) -> None:
        """Send the previous connection its barrier now: the held command at the front goes
        elsewhere once it is back."""
        last = self.last
        if last is None or last.closed:
            self._release()
            return
        self.barrier = last
        last.write(render_command([b"PING", self.token]))

    def _release(self) -> None:
        """The barrier is back: run the held commands until one waits for another."""
        self.barrier = None
        self.last = None
        held = self.held
        while held and self.barrier is None:
            args, raw = held.popleft()
            self.command(args, raw)
        if len(held) <= MAX_HELD:
            self.replies.update_client_reading()

    def frame(self, link: StreamLink, frame: bytes) -> None:
        """One frame a node sent: to the client, a redirect made TRYAGAIN, a sharded confirmation
        counting every shard's subscriptions; the barrier's pong ends the wait for it."""
        if link is self.barrier and frame in self.pongs:
            self._release()
            return
        if frame[:1] == b"-":
            if frame.startswith(_REDIRECTS):
                self.table.topology.refresh_soon()
                frame = STREAM_REDIRECT_REPLY
        elif not self.monitor:
            count = parse_confirmation_count(frame)
            if count is not None:
                counts = self.shard_counts
                counts[link.socket] = count
                total = sum(counts.values())
                if total != count:
                    frame = render_confirmation_count(frame, total)
        self.replies.pubsub_data(frame)

    def close(self) -> None:
        for link in self.links.values():
            link.close()
