"""One client's node connections: which one a command goes over, retries, and lost connections.

While the client's commands are stateless (``amr.logic.dataplane.link_sharing``) they go over lanes on
connections shared with the listener's other clients of the same identity (``pool``); after its
first stateful command, over connections of its own (``NodeLink``), opened on first use and
authenticated by replaying the client's AUTH/HELLO.

MOVED/ASK/TRYAGAIN/CLUSTERDOWN never reach the client: the command is sent again where the reply
says (``retry``), the slot map updated and re-read. A lost connection that owed the client a reply
closes the client (what happened to its commands is unknown).
"""

from __future__ import annotations

import asyncio
import random
from typing import Protocol

from amr.gateway.router_topology import ClusterTopology
from amr.gateway.routing.items import Item, Link, Swallow
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.pool import Lane, LinkPool
from amr.gateway.routing.replies import ReplyQueue
from amr.gateway.routing.session import Session
from amr.logic.dataplane.cluster_slots import parse_redirect
from amr.logic.resp.frames import render_command


class StreamSession(Protocol):
    """The client's connection in pub/sub or MONITOR mode (``amr.gateway.routing.streams``): its
    commands go there, and its node connections' loss ends the client's."""

    @property
    def quitting(self) -> bool:
        """The client sent QUIT: the node closing the connection is the end it asked for."""

    def command(self, args: list[bytes], raw: bytes) -> None: ...

    def holds_client(self) -> bool:
        """Too many of the client's commands wait: it is not read until they go."""

    def owns(self, link: NodeLink) -> bool: ...

    def stream_links(self) -> list[NodeLink]: ...

    def close(self) -> None: ...


# A command may be redirected or retried this many times before its error goes to the client.
MAX_TRIES = 20
RETRY_DELAY = 0.02
ASKING = b"*1\r\n$6\r\nASKING\r\n"


class LinkTable:
    """The node connections of one client: its own (``links``), its lanes on shared ones (``lanes``),
    and the ones with a role (``pubsub``, ``watch_link``) whose loss always closes the client."""

    __slots__ = (
        "session", "replies", "topology", "replay", "replayed", "links", "lanes", "pool", "batching",
        "dirty", "pubsub", "watch_link", "watch_slot", "tracking", "rng", "_tasks",
    )  # fmt: skip

    def __init__(
        self,
        session: Session,
        replies: ReplyQueue,
        topology: ClusterTopology,
        replay: dict[bytes, tuple[bytes, ...]],
        pool: LinkPool | None,
    ) -> None:
        self.session = session
        self.replies = replies
        self.topology = topology
        # The client's AUTH/HELLO, replayed on every connection it opens.
        self.replay = replay
        self.replayed = tuple(render_command(args) for args in replay.values())
        self.links: dict[str, NodeLink] = {}
        # Shared node connections while the client is stateless (None: its own connections only).
        self.pool = pool
        self.lanes: dict[str, Lane] = {}
        self.batching = False  # while routing one client chunk: node writes wait in ``dirty``
        self.dirty: list[NodeLink] = []
        self.pubsub: StreamSession | None = None
        self.watch_link: Link | None = None
        self.watch_slot = -1
        # The client's CLIENT TRACKING mode (``amr.logic.dataplane.tracking``); None: off.
        self.tracking: bytes | None = None
        self.rng = random.Random()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- link choice ------------------------------------------------------------------------------

    def link(self, socket: str) -> Link:
        """The connection to ``socket``, opened (and authenticated as the client) on first use: a
        lane on a shared connection while the client shares them."""
        if self.pool is not None:
            lane = self.lanes.get(socket)
            if lane is None or lane.closed:
                lane = self.lanes[socket] = self.pool.lane(self, socket, self.replayed)
            return lane
        return self.own_link(socket)

    def own_link(self, socket: str) -> NodeLink:
        """The client's own connection to ``socket``, opened (and authenticated as the client) on first use."""
        link = self.links.get(socket)
        if link is not None and not link.closed:
            return link
        link = NodeLink(self, socket)
        self.links[socket] = link
        self.replay_on(link)
        self.connect(link)
        return link

    def replay_on(self, link: NodeLink) -> None:
        """Queue the client's AUTH/HELLO on a new connection of its own."""
        for replayed in self.replay.values():
            link.send(render_command(replayed), Swallow(self.replay_refused))

    def connect(self, link: NodeLink) -> None:
        task = asyncio.get_running_loop().create_task(link.connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def to(self, socket: str) -> Link:
        """The connection for a routed command: to ``socket``, or any open one for "" (keyless)."""
        if not socket:
            return self.any_link()
        link: Link | None = (self.lanes if self.pool is not None else self.links).get(socket)
        if link is not None and not link.closed:
            return link
        return self.link(socket)

    def slot_link(self, slot: int) -> Link:
        slot_map = self.topology.slot_map
        index = slot_map.owner[slot]
        primaries = slot_map.primaries
        return self.to(primaries[index] if index >= 0 else primaries[0])

    def any_link(self) -> Link:
        """A node for a keyless command: an open connection if there is one."""
        for link in (self.lanes if self.pool is not None else self.links).values():
            if not link.closed:
                return link
        return self.link(self.topology.slot_map.primaries[0])

    def leave_shared(self) -> bool:
        """The client is stateful from now on: its own connections only. True if it was sharing."""
        pool, self.pool = self.pool, None
        if pool is None:
            return False
        for lane in self.lanes.values():
            lane.shared.leave(self)
        self.lanes.clear()
        return True

    def write_batch(self) -> None:
        """The end of a batch of commands: one write per node connection for all of them."""
        self.batching = False
        dirty = self.dirty
        if dirty:
            for link in dirty:
                link.write_out()
            dirty.clear()

    # -- retries ----------------------------------------------------------------------------------

    def retry(self, item: Item, frame: bytes, from_socket: str) -> bool:
        """The node at ``from_socket`` answered ``item`` with an error: send it again where MOVED/ASK
        say, or after a short delay for TRYAGAIN/CLUSTERDOWN; False when the error is the client's to see."""
        if item.tries >= MAX_TRIES or isinstance(item, Swallow):
            return False
        redirect = parse_redirect(frame)
        if redirect is not None:
            kind, slot, port = redirect
            socket = self.topology.socket_for_port(port)
            if socket is None:
                self.topology.refresh_soon()
                return False
            item.tries += 1
            target = self.link(socket)
            if kind == b"MOVED":
                self.topology.slot_map.moved(slot, socket)
                self.topology.refresh_soon()
            else:
                # ASKING and the command are queued back to back on the same connection: they leave
                # in one write, with no other client's command between them on a shared one.
                target.send(ASKING, Swallow())
            target.send(item.raw, item)
            return True
        if frame.startswith(b"-TRYAGAIN") or frame.startswith(b"-CLUSTERDOWN"):
            item.tries += 1
            if frame.startswith(b"-CLUSTERDOWN"):
                self.topology.refresh_soon()
            delay = RETRY_DELAY * item.tries
            asyncio.get_running_loop().call_later(delay, self._resend, item, from_socket)
            return True
        return False

    def _resend(self, item: Item, socket: str) -> None:
        if self.session.closed:
            return
        if item.slot >= 0:
            target = self.slot_link(item.slot)
        else:
            target = self.link(socket)
        target.send(item.raw, item)

    # -- lost links -------------------------------------------------------------------------------

    def replay_refused(self, frame: bytes) -> None:
        # The client's credentials no longer work on a node (a key was regenerated).
        self.session.fail("auth_replay_refused")

    def shared_link_lost(self, reason: str) -> None:
        """A shared connection this client was waiting on closed: as for its own (``link_lost``)."""
        if not self.session.closed:
            self.topology.refresh_soon()
            self.session.fail(reason)

    def link_failed(self, link: NodeLink, reason: str) -> None:
        """A node connection could not be opened."""
        link.closed = True
        self.link_lost(link, reason)

    def link_lost(self, link: NodeLink, reason: str = "node_closed") -> None:
        """A node connection closed: forgotten if it owed nothing; the client is closed otherwise
        (what happened to the commands it was running is unknown), and always while it tracks keys."""
        if self.links.get(link.socket) is link:
            del self.links[link.socket]
        if self.session.closed:
            return
        self.topology.refresh_soon()
        pubsub = self.pubsub
        if pubsub is not None and pubsub.owns(link):
            self.session.fail("client_quit" if pubsub.quitting else reason)
            return
        if link is self.watch_link or self.tracking is not None:
            # A tracking client: the node forgot the keys it tracked for it, so it must drop its
            # cache, which it does when its connection closes.
            self.session.fail(reason)
            return
        if any(not isinstance(item, Swallow) for item in link.owed):
            self.session.fail(reason)

    # -- flow control and closing -----------------------------------------------------------------

    def pause_links(self, paused: bool) -> None:
        """The client is not reading its replies: stop (or resume) reading every connection of its
        own. A shared one is never paused for one client: the client has left them (its replies
        still owed there are buffered for it) and the engine holds what it will be owed on its own."""
        self.replies.links_paused = paused
        links = list(self.links.values()) + (self.pubsub.stream_links() if self.pubsub is not None else [])
        for link in links:
            t = link.transport
            if t is None or t.is_closing():
                continue
            if paused and not link.paused:
                t.pause_reading()
            elif not paused and link.paused:
                t.resume_reading()
            link.paused = paused

    def close(self) -> None:
        """The client is gone: close every node connection."""
        for lane in self.lanes.values():
            lane.shared.leave(self)
        for link in list(self.links.values()):
            link.close()
        if self.pubsub is not None:
            self.pubsub.close()
        for task in self._tasks:
            task.cancel()
