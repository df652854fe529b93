"""One client's replies: put back in the order it sent its commands, written as soon as they are
complete, and the flow control between the client and the router.

Replies are raw frames. One FIFO of ``Pending`` entries holds the client's commands in order; the
head is written as soon as it is complete, so a pipeline across shards is answered in order.

Backpressure, both ways: a client with more than ``MAX_PENDING`` commands waiting here, or whose
node connections' write buffers are full, is not read; a client not reading while
``MAX_REPLY_BUFFER`` of its replies wait in the gateway is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque

from amr.gateway.routing.items import Pending
from amr.gateway.routing.session import ClientConnection, Session

# Commands answered out of order wait in the FIFO; past this many the client is not read.
MAX_PENDING = 10_000
# A client that is not reading while this much of its replies waits in the gateway is closed.
MAX_REPLY_BUFFER = 64 << 20


class ReplyQueue:
    """The client's queue of commands waiting for their replies, and whether the client is read."""

    __slots__ = (
        "session", "client", "transport", "fifo", "backlog", "bytes_out", "links_paused", "full_links",
        "client_paused", "_flush_soon",
    )  # fmt: skip

    def __init__(self, client: ClientConnection, session: Session) -> None:
        self.session = session
        self.client = client
        assert client.transport is not None
        self.transport = client.transport
        self.fifo: deque[Pending] = deque()
        # Bytes of the pub/sub connection that arrived while replies were still owed.
        self.backlog: list[bytes] = []
        self.bytes_out = 0
        # The client is not reading its replies: its node connections are not read either.
        self.links_paused = False
        self.full_links = 0  # node connections whose write buffer is full
        self.client_paused = False
        self._flush_soon = False

    def node_replied(self) -> None:
        """A node's replies were matched: write what is complete, at once for a lone command, else
        once the loop has read every node that answered in this turn (one TLS record for a
        pipeline's replies from several shards, rather than one per shard)."""
        fifo = self.fifo
        if not fifo or fifo[0].reply is None:
            return
        if len(fifo) == 1:
            self.flush()
        elif not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_soon = False
        if not self.session.closed:
            self.flush()

    def flush(self) -> None:
        """Write every complete reply at the head of the client's queue."""
        fifo = self.fifo
        if fifo and fifo[0].reply is not None:
            t = self.transport
            if self.links_paused and t.get_write_buffer_size() > MAX_REPLY_BUFFER:
                # It is not reading, and what it was sent over shared connections kept coming.
                self.client.abort("output_buffer_limit")
                return
            head = fifo.popleft().reply
            if not fifo or fifo[0].reply is None:
                assert head is not None
                t.write(head)
            else:
                out = [head]
                while fifo and fifo[0].reply is not None:
                    out.append(fifo.popleft().reply)
                t.write(b"".join(out))  # type: ignore[arg-type]
            if self.client_paused and len(fifo) < MAX_PENDING // 2:
                self.update_client_reading()
        if not fifo:
            self.session.replies_written()

    def refuse(self, reply: bytes, reason: str) -> None:
        """Answer the client's last command with an error (after the replies before it), then close it."""
        self.fifo.append(Pending(reply=reply))
        self.flush()
        self.session.fail(reason)

    def write_backlog(self) -> None:
        """What the pub/sub connection sent while replies were owed, now that they are written."""
        if self.backlog:
            backlog, self.backlog = self.backlog, []
            self.transport.write(b"".join(backlog))

    def push(self, frame: bytes) -> None:
        """An out-of-band push (a tracking invalidation): to the client at once, or after the replies
        still owed: one of them may be the read of the key it invalidates, which must not reach the
        client after it (the client would cache a value it was told is stale)."""
        if self.fifo:
            self.fifo.append(Pending(reply=frame))
        else:
            self.transport.write(frame)

    def pubsub_data(self, data: bytes) -> None:
        """Bytes of the pub/sub connection: to the client once the replies before it are written."""
        if self.fifo:
            self.backlog.append(data)
        else:
            self.transport.write(data)

    def pause_client(self, full: bool) -> None:
        """A node connection's write buffer filled up (or drained): stop (or resume) reading the client."""
        self.full_links += 1 if full else -1
        self.update_client_reading()

    def update_client_reading(self) -> None:
        """Read the client, or not: not while a node connection is full, too many replies are owed,
        or the router holds it (``Session.holds_client``)."""
        want_paused = self.full_links > 0 or len(self.fifo) > MAX_PENDING or self.session.holds_client()
        if want_paused == self.client_paused or self.transport.is_closing():
            return
        self.client_paused = want_paused
        if want_paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
