"""The router's node connections and what each one owes.

A ``NodeLink`` is one client's connection to one node's unix socket, opened on first use and
authenticated by replaying the client's own AUTH/HELLO (so the engine's ACL and protocol version
apply). It frames the node's replies and hands each to the next item it owes, in order. Items:
``Pending`` (a client command answered by one node: it is its own client-queue entry), ``Part``
(one node's share of a split or fanned-out command) and ``Swallow`` (a reply nobody waits for:
replayed AUTH/HELLO, ASKING).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from amr.logic.resp_frames import ReplyFrameError, ReplyFramer

if TYPE_CHECKING:
    from amr.gateway.router import Router

log = logging.getLogger(__name__)

WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18
CONNECT_TIMEOUT = 5.0
# A reply on a connection of the client's own passes through as it arrives past this size.
PASS_REPLY_AT = 1 << 20


class Pending:
    """A client command answered by one node (or by the router itself): a client-queue entry."""

    __slots__ = ("reply", "raw", "slot", "tries")

    def __init__(self, raw: bytes = b"", slot: int = -1, reply: bytes | None = None) -> None:
        self.reply = reply
        self.raw = raw
        self.slot = slot
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        self.reply = frame


class Streamed(Pending):
    """A big command sent to its node as it arrived (``amr.logic.request_stream``): the router
    does not have it to send again, so a redirect (its slot moving, a failover) reaches the client
    as TRYAGAIN, which it may retry."""

    __slots__ = ()

    def __init__(self, slot: int) -> None:
        super().__init__(b"", slot)
        self.tries = 1 << 30  # never retried by the router

    def deliver(self, frame: bytes) -> None:
        if frame[:1] == b"-" and frame.split(b" ", 1)[0] in _REDIRECTS:
            frame = STREAMED_REDIRECT_REPLY
        self.reply = frame


_REDIRECTS = frozenset({b"-MOVED", b"-ASK", b"-TRYAGAIN", b"-CLUSTERDOWN"})
STREAMED_REDIRECT_REPLY = (
    b"-TRYAGAIN a large command cannot be resent while its slot moves or its shard fails over; send it again\r\n"
)


class Merged(Pending):
    """A client command answered by several nodes: complete when every part has answered, then
    ``merge`` makes the client's reply from the parts' replies (in part order)."""

    __slots__ = ("parts", "left", "merge")

    def __init__(self, count: int, merge: Callable[[list[bytes]], bytes]) -> None:
        super().__init__()
        self.parts: list[bytes] = [b""] * count
        self.left = count
        self.merge = merge

    def part_done(self, index: int, frame: bytes) -> None:
        self.parts[index] = frame
        self.left -= 1
        if self.left == 0:
            self.reply = self.merge(self.parts)


class Part:
    """One node's share of a ``Merged`` command."""

    __slots__ = ("owner", "index", "raw", "slot", "tries")

    def __init__(self, owner: Merged, index: int, raw: bytes, slot: int) -> None:
        self.owner = owner
        self.index = index
        self.raw = raw
        self.slot = slot
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        self.owner.part_done(self.index, frame)


class Swallow:
    """A reply the client never sees; ``check`` is told of an error (a replayed AUTH refused)."""

    __slots__ = ("check", "raw", "slot", "tries")

    def __init__(self, check: Callable[[bytes], None] | None = None) -> None:
        self.check = check
        self.raw = b""
        self.slot = -1
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        if self.check is not None and frame[:1] in (b"-", b"!"):
            self.check(frame)


Item = Pending | Part | Swallow


class Link(Protocol):
    """What the router sends a command over: its own ``NodeLink`` or its ``Lane`` on a connection
    shared with other clients (``amr.gateway.router_pool``)."""

    @property
    def socket(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def send(self, raw: bytes, item: Item) -> None: ...


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


class NodeLink(NodeConnection):
    """One client's connection to one node: writes go out in order, replies are matched in order."""

    __slots__ = ("router", "framer", "owed", "paused", "splice", "pubsub", "out", "full", "passing")

    def __init__(self, router: Router, socket: str) -> None:
        super().__init__(socket)
        self.router = router
        self.framer = ReplyFramer()
        self.owed: deque[Item] = deque()
        self.paused = False
        # A pub/sub link: once the replayed AUTH/HELLO are answered, the node's bytes go to the client
        # as they come (``splice``; see Router._subscribe).
        self.pubsub = False
        self.splice = False
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
        elif self.router.batching:
            # One write (one syscall) per node per client chunk, not one per pipelined command.
            out = self.out
            if not out:
                self.router.dirty.append(self)
            out.append(raw)
        else:
            t.write(raw)

    def write_out(self) -> None:
        out, self.out = self.out, []
        t = self.transport
        if t is not None and out:
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def connect_failed(self, reason: str) -> None:
        self.router.link_failed(self, reason)

    def connected(self, transport: asyncio.Transport) -> None:
        if self.router.links_paused:
            self.paused = True
            transport.pause_reading()
        if self.router.stream is not None:
            self.router.link_up()

    def data_received(self, data: bytes) -> None:
        router = self.router
        if router.closed:
            return
        router.bytes_out += len(data)
        if self.splice:
            router.pubsub_data(data)
            return
        if self.passing:
            data = self._pass_reply(data)
            if not data:
                return
        try:
            frames = self.framer.feed(data)
        except ReplyFrameError:
            router.fail("node_protocol_error")
            return
        owed = self.owed
        for i, frame in enumerate(frames):
            if self.pubsub and not owed:
                self._start_splice(b"".join(frames[i:]))
                return
            if frame[0] == 0x3E:  # ">": an out-of-band push (client tracking), not a reply
                router.push(frame)
                continue
            if not owed:
                router.fail("node_protocol_error")
                return
            item = owed.popleft()
            if frame[0] == 0x2D and router.retry(item, frame, self.socket):
                continue
            item.deliver(frame)
        if self.pubsub and not owed:
            self._start_splice(b"")
            return
        if self.framer.buffered > PASS_REPLY_AT and owed:
            self._start_passing()
        router.node_replied()

    def _start_passing(self) -> None:
        """A big bulk reply is coming in: if the client is owed nothing before it, write its bytes
        to the client as they arrive instead of framing it whole. The client's flow control is this
        connection's: a client that does not read has it paused (``Router.pause_links``), and the
        engine holds the rest, within its client output limits."""
        router = self.router
        item = self.owed[0]
        if type(item) is not Pending or not router.fifo or router.fifo[0] is not item:
            return
        partial = self.framer.take_partial()
        if partial is None:
            return
        head, self.passing = partial
        router.transport.write(head)

    def _pass_reply(self, data: bytes) -> bytes:
        """Bytes of the reply being passed on go to the client; return what follows it."""
        router = self.router
        n = min(self.passing, len(data))
        router.transport.write(data if n == len(data) else data[:n])
        self.passing -= n
        if self.passing:
            return b""
        item = self.owed.popleft()
        assert router.fifo[0] is item
        router.fifo.popleft()
        router.flush()
        return data[n:]

    def _start_splice(self, first: bytes) -> None:
        self.splice = True
        rest = first + bytes(self.framer._buf)
        self.framer = ReplyFramer()
        if rest:
            self.router.pubsub_data(rest)

    def pause_writing(self) -> None:
        if not self.full:
            self.full = True
            self.router.pause_client(True)

    def resume_writing(self) -> None:
        if self.full:
            self.full = False
            self.router.pause_client(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()  # a closed link holds nothing back
        self.router.link_lost(self)
