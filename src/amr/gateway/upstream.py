"""The node side of a spliced client connection: the connection to the node's unix socket.

Until the client has authenticated, the node's replies go back through the client side's
authentication phase (``UpstreamClient.reply_data``); from then on each side writes straight into
the other. Flow control is the transports' own: when one side's write buffer goes over the high-water
mark, asyncio calls ``pause_writing`` on that side's protocol, which pauses reading on the peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, cast

# Per-direction buffering before the peer is paused; big enough for a pipelined batch in flight.
WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18


def resume_peer(transport: asyncio.Transport | None) -> None:
    """The other side drained its write buffer: read this one again (if it is still open)."""
    if transport is not None and not transport.is_closing():
        transport.resume_reading()


def pause_peer(transport: asyncio.Transport | None) -> None:
    """The other side's write buffer is full: stop reading this one (if it is still open)."""
    if transport is not None and not transport.is_closing():
        transport.pause_reading()


class UpstreamClient(Protocol):
    """What the node side asks of its client connection (``amr.gateway.splice.ClientSide``)."""

    @property
    def transport(self) -> asyncio.Transport | None: ...

    def reply_data(self, data: bytes) -> None:
        """Bytes from the node before the splice: through the authentication phase."""

    def close_for(self, reason: str) -> None:
        """Close both sides (after what is already written), recording ``reason``."""

    def upstream_lost(self) -> None:
        """The node connection closed."""


class UpstreamSide(asyncio.Protocol):
    """The connection to the node's unix socket."""

    __slots__ = ("client", "transport", "nbytes", "_splice", "detached")

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.nbytes = 0
        self._splice: Callable[[bytes], object] | None = None
        self.detached = False  # handed over to the router (it has another protocol now)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        w = self._splice
        if w is not None:
            w(data)
            return
        self.client.reply_data(data)

    def eof_received(self) -> bool:
        # The node closing ends the session: close both (pending writes are flushed first).
        self._splice = None
        if self.detached:
            return False
        self.client.close_for("node_closed")
        return False

    def pause_writing(self) -> None:
        pause_peer(self.client.transport)

    def resume_writing(self) -> None:
        resume_peer(self.client.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._splice = None
        if not self.detached:
            self.client.upstream_lost()
