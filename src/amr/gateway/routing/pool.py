"""Node connections shared by the routed clients of one listener (multiplexing).

Routing each client over connections of its own makes every engine process wake up for every
request of every client. Instead, clients that authenticate the same way (the exact bytes of their
replayed AUTH/HELLO: same user, password and protocol version, so the same ACL and reply format)
send their stateless commands (``amr.logic.dataplane.link_sharing``) over one ``SharedLink`` per node, which
writes once per event-loop pass for all of them: the engine reads many clients' commands per read.

A shared link's queue of owed replies knows whose each one is: a reply is delivered to its item and
that client's reply queue is told once per read (``node_replied``). Redirects and retries go through the
client's link table as on its own links (ASKING and the command are appended together, so they leave in
one write with nothing between them). A lost link fails every client that was waiting on it, as a
lost link of its own would; a refused AUTH replay closes the link, failing its clients the same way
(the key was regenerated). A link whose write buffer fills pauses reading from every client using
it, until it drains. A link is never paused for one client's sake: a client that does not read its
replies leaves the shared links (``LinkTable.pause_links``). The link knows each client only as a
``PoolUser`` (``amr.gateway.routing.owners``).

Links unused for ``IDLE_CLOSE`` seconds are closed, as are those to nodes the route no longer has,
once they owe nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from amr.gateway.routing.items import Item, Swallow
from amr.gateway.routing.node_link import NodeConnection
from amr.gateway.routing.owners import PoolUser
from amr.logic.resp.frames import ReplyFrameError, ReplyFramer

log = logging.getLogger(__name__)

# A shared link nobody sent anything over for this long (between two sweeps) is closed.
IDLE_CLOSE = 10.0


class SharedLink(NodeConnection):
    """One connection to one node, authenticated as one identity, carrying many clients' commands."""

    __slots__ = (
        "pool", "key", "framer", "owed", "out", "retiring", "full", "users", "paused", "used", "reason",
        "lost", "_writing",
    )  # fmt: skip

    def __init__(self, pool: LinkPool, key: tuple[str, bytes]) -> None:
        super().__init__(key[0])
        self.pool = pool
        self.key = key
        self.framer = ReplyFramer()
        # Whose each owed reply is: None for the link's own replayed AUTH/HELLO.
        self.owed: deque[tuple[PoolUser | None, Item]] = deque()
        self.out: list[bytes] = []
        self.retiring = False  # its node left the route: no new commands, closed once it owes nothing
        self.full = False
        self.users: set[PoolUser] = set()  # clients with a lane on it: paused while it is full
        self.paused: list[PoolUser] = []
        self.used = True  # sent something since the last sweep
        self.reason = "node_closed"
        self.lost = False
        self._writing = False

    # -- commands out -----------------------------------------------------------------------------

    def send(self, user: PoolUser | None, raw: bytes, item: Item) -> None:
        self.owed.append((user, item))
        self.used = True
        if self.transport is None:
            self.early.append(raw)
            return
        # Written once the loop has run every client that had input in this pass: one write (and
        # one engine read) for all of them.
        self.out.append(raw)
        if not self._writing:
            self._writing = True
            self.pool.loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._writing = False
        out, self.out = self.out, []
        t = self.transport
        if t is not None and out and not t.is_closing():
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def connect_failed(self, reason: str) -> None:
        self.reason = reason
        self._lost()

    # -- replies in -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.framer.feed(data)
        except ReplyFrameError:
            self._fail("node_protocol_error")
            return
        owed = self.owed
        replied: set[PoolUser] = set()
        for frame in frames:
            if frame[0] == 0x3E:  # a push: none of the commands that share a link asks for one
                continue
            if not owed:
                self._fail("node_protocol_error")
                return
            user, item = owed.popleft()
            if user is None:  # the link's replayed AUTH/HELLO
                item.deliver(frame)
                if self.closed:
                    return
                continue
            if user.session.closed:
                continue
            user.replies.bytes_out += len(frame)
            if frame[0] == 0x2D and user.retry(item, frame, self.socket):
                continue
            item.deliver(frame)
            replied.add(user)
        for user in replied:
            if not user.session.closed:
                user.replies.node_replied()
        if self.retiring and not owed:
            self.close()

    def replay_refused(self, frame: bytes) -> None:
        # The identity's credentials no longer work (a key was regenerated): the commands queued
        # behind the AUTH would only get NOAUTH, and their clients are closed as on their own links.
        self._fail("auth_replay_refused")

    # -- flow control -----------------------------------------------------------------------------

    def join(self, user: PoolUser) -> None:
        """``user`` sends over this link from now on (and is paused with the others while it is full)."""
        self.users.add(user)
        if self.full:
            self.paused.append(user)
            user.replies.pause_client(True)

    def leave(self, user: PoolUser) -> None:
        self.users.discard(user)

    def pause_writing(self) -> None:
        if not self.full:
            self.full = True
            self.paused = list(self.users)
            for user in self.paused:
                user.replies.pause_client(True)

    def resume_writing(self) -> None:
        if self.full:
            self.full = False
            paused, self.paused = self.paused, []
            for user in paused:
                user.replies.pause_client(False)

    # -- closing ----------------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _fail(self, reason: str) -> None:
        self.reason = reason
        self.close()
        self._lost()

    def _lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        unexpected = not self.closed  # not closed by the gateway (idle, retired, failed)
        self.closed = True
        self.pool.forget(self)
        self.resume_writing()  # a closed link holds nobody back
        owed, self.owed = self.owed, deque()
        waiting = {r for r, item in owed if r is not None and not isinstance(item, Swallow)}
        if unexpected:
            self.pool.on_lost()
        for user in waiting:
            user.shared_link_lost(self.reason)


class Lane:
    """One client's handle on a shared link, used like its own ``NodeLink``."""

    __slots__ = ("user", "shared")

    def __init__(self, user: PoolUser, shared: SharedLink) -> None:
        self.user = user
        self.shared = shared

    @property
    def socket(self) -> str:
        return self.shared.socket

    @property
    def closed(self) -> bool:
        return self.shared.closed or self.shared.retiring

    def send(self, raw: bytes, item: Item) -> None:
        self.shared.send(self.user, raw, item)


class LinkPool:
    """The shared links of one listener's routed clients, one per (node socket, identity); owned by
    the listener, handed to each of its routed clients. ``on_lost`` is told when a link in use is lost (the
    listener reads its slot map again)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[], None]) -> None:
        self.loop = loop
        self.on_lost = on_lost
        self.links: dict[tuple[str, bytes], SharedLink] = {}
        self.retiring: set[SharedLink] = set()
        self.closed = False
        self._sweep: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def lane(self, user: PoolUser, socket: str, replayed: tuple[bytes, ...]) -> Lane:
        """``user``'s lane to ``socket`` for its identity (its rendered AUTH/HELLO commands), on
        the open link if there is one, else on a new one."""
        key = (socket, b"".join(replayed))
        link = self.links.get(key)
        if link is None or link.closed or self.closed:
            link = SharedLink(self, key)
            if not self.closed:
                self.links[key] = link
            for raw in replayed:
                link.send(None, raw, Swallow(link.replay_refused))
            task = self.loop.create_task(link.connect())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self._sweep is None and not self.closed:
                self._sweep = self.loop.call_later(IDLE_CLOSE, self._close_idle)
        link.join(user)
        return Lane(user, link)

    def forget(self, link: SharedLink) -> None:
        """Stop handing out ``link`` (it is lost)."""
        if self.links.get(link.key) is link:
            del self.links[link.key]
        self.retiring.discard(link)

    def _close_idle(self) -> None:
        self._sweep = None
        for link in list(self.links.values()):
            if not link.used and not link.owed:
                del self.links[link.key]
                link.close()
            link.used = False
        for link in list(self.retiring):
            if not link.owed:
                self.retiring.discard(link)
                link.close()
        if (self.links or self.retiring) and not self.closed:
            self._sweep = self.loop.call_later(IDLE_CLOSE, self._close_idle)

    def retire(self, sockets: set[str]) -> None:
        """The route's nodes are now ``sockets``: links to any other node take no new commands and
        close once they owe nothing."""
        for key, link in list(self.links.items()):
            if key[0] not in sockets:
                del self.links[key]
                link.retiring = True
                if link.owed:
                    self.retiring.add(link)
                else:
                    link.close()

    def close(self) -> None:
        """The listener stops: close every link (its clients are closed too)."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for link in [*self.links.values(), *self.retiring]:
            link.close()
        for task in self._tasks:
            task.cancel()
