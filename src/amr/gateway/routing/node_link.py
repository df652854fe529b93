"""A client's own node connections.

A ``NodeLink`` is one client's connection to one node's unix socket, opened on first use and
authenticated by replaying the client's own AUTH/HELLO (so the engine's ACL and protocol version
apply). It frames the node's replies and hands each to the next item it owes, in order
(``amr.gateway.routing.items``). It asks its owner (``LinkOwner``) for retries and tells it of its
loss; its replies go to the client's ``ReplyQueue``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import deque
from typing import Protocol, cast

from amr.gateway.routing.items import Item, Pending
from amr.gateway.routing.owners import PoolUser
from amr.logic.resp.frames import ReplyFrameError, ReplyFramer

log = logging.getLogger(__name__)

WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18
CONNECT_TIMEOUT = 5.0
# A reply on a connection of the client's own passes through as it arrives past this size.
PASS_REPLY_AT = 1 << 20


class NodeConnection(asyncio.Protocol):
    """A connection to one node's unix socket, whoever it serves: opened with a deadline, what was
    queued before it was up written at once, closed without waiting for the node."""

    __slots__ = ("socket", "transport", "early", "closed")

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []
        self.closed = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_unix_connection(lambda: self, self.socket)
        except (TimeoutError, OSError) as e:
            exhausted = isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE)
            self.connect_failed("no_descriptors" if exhausted else "node_unavailable")

    def connect_failed(self, reason: str) -> None:
        raise NotImplementedError

    def connected(self, transport: asyncio.Transport) -> None:
        """Up, and what was queued is written."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)
        t.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        if self.closed:
            t.close()
            return
        early, self.early = self.early, []
        if early:
            t.write(b"".join(early))
        self.connected(t)

    def eof_received(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.close()


class LinkOwner(PoolUser, Protocol):
    """The owner of a client's own node connections (its link table): it also batches their writes
    and hears of their loss."""

    @property
    def batching(self) -> bool:
        """While one client chunk is routed: node writes wait in ``dirty`` for one write each."""

    @property
    def dirty(self) -> list[NodeLink]: ...

    def link_failed(self, link: NodeLink, reason: str) -> None:
        """``link`` could not be opened."""

    def link_lost(self, link: NodeLink, reason: str = "node_closed") -> None:
        """``link`` closed: forgotten, and the client failed if it owed it a reply."""


class NodeLink(NodeConnection):
    """One client's connection to one node: writes go out in order, replies are matched in order."""

    __slots__ = (
        "owner", "session", "replies", "framer", "owed", "paused", "out", "full", "passing",
    )  # fmt: skip

    def __init__(self, owner: LinkOwner, socket: str) -> None:
        super().__init__(socket)
        self.owner = owner
        self.session = owner.session
        self.replies = owner.replies
        self.framer = ReplyFramer()
        self.owed: deque[Item] = deque()
        self.paused = False
        # Commands of the client's current input chunk, written at once when the chunk is routed.
        self.out: list[bytes] = []
        self.full = False  # its write buffer is over the high-water mark: the client is not read
        # Bytes still to come of a big reply passed to the client as it arrives (``_pass_reply``).
        self.passing = 0

    def send(self, raw: bytes, item: Item) -> None:
        self.owed.append(item)
        t = self.transport
        if t is None:
            self.early.append(raw)
        elif self.owner.batching:
            # One write (one syscall) per node per client chunk, not one per pipelined command.
            out = self.out
            if not out:
                self.owner.dirty.append(self)
            out.append(raw)
        else:
            t.write(raw)

    def write_out(self) -> None:
        out, self.out = self.out, []
        t = self.transport
        if t is not None and out:
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def connect_failed(self, reason: str) -> None:
        self.owner.link_failed(self, reason)

    def connected(self, transport: asyncio.Transport) -> None:
        if self.replies.links_paused:
            self.paused = True
            transport.pause_reading()
        self.session.link_up()

    def data_received(self, data: bytes) -> None:
        if self.session.closed:
            return
        replies = self.replies
        replies.bytes_out += len(data)
        if self.passing:
            data = self._pass_reply(data)
            if not data:
                return
        try:
            frames = self.framer.feed(data)
        except ReplyFrameError:
            self.session.fail("node_protocol_error")
            return
        owed = self.owed
        for frame in frames:
            if frame[0] == 0x3E:  # ">": an out-of-band push (client tracking), not a reply
                self.pushed(frame)
                continue
            if not owed:
                if self.unowed(frame):
                    continue
                return
            item = owed.popleft()
            if frame[0] == 0x2D and self.owner.retry(item, frame, self.socket):
                continue
            item.deliver(frame)
        if self.framer.buffered > PASS_REPLY_AT and owed:
            self._start_passing()
        replies.node_replied()

    def pushed(self, frame: bytes) -> None:
        """An out-of-band push: to the client between its replies."""
        self.replies.push(frame)

    def unowed(self, frame: bytes) -> bool:
        """A frame with no command owed for it: True to read on; here the node is out of step with
        the gateway, and the client is closed."""
        self.session.fail("node_protocol_error")
        return False

    def _start_passing(self) -> None:
        """A big bulk reply is coming in: if the client is owed nothing before it, write its bytes
        to the client as they arrive instead of framing it whole. The client's flow control is this
        connection's: a client that does not read has it paused (``LinkTable.pause_links``), and the
        engine holds the rest, within its client output limits."""
        replies = self.replies
        item = self.owed[0]
        if type(item) is not Pending or not replies.fifo or replies.fifo[0] is not item:
            return
        partial = self.framer.take_partial()
        if partial is None:
            return
        head, self.passing = partial
        replies.transport.write(head)

    def _pass_reply(self, data: bytes) -> bytes:
        """Bytes of the reply being passed on go to the client; return what follows it."""
        replies = self.replies
        n = min(self.passing, len(data))
        replies.transport.write(data if n == len(data) else data[:n])
        self.passing -= n
        if self.passing:
            return b""
        item = self.owed.popleft()
        assert replies.fifo[0] is item
        replies.fifo.popleft()
        replies.flush()
        return data[n:]

    def pause_writing(self) -> None:
        if not self.full:
            self.full = True
            self.replies.pause_client(True)

    def resume_writing(self) -> None:
        if self.full:
            self.full = False
            self.replies.pause_client(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()  # a closed link holds nothing back
        self.owner.link_lost(self)
