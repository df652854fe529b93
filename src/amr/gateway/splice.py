"""Byte-for-byte forwarding between a client connection and a node's unix socket.

Two asyncio Protocols, one per side; each writes what it receives straight into the other side's
transport. Flow control is the transports' own: when one side's write buffer goes over the high-water
mark, asyncio calls ``pause_writing`` on that side's protocol, which pauses reading on the peer;
``resume_writing`` resumes it. Payload bytes are never parsed, copied or logged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger(__name__)

# Per-direction buffering before the peer is paused; big enough for a pipelined batch in flight.
WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18
CONNECT_TIMEOUT = 5.0


class ConnectionSet:
    """The open client connections of one listener, so they can be closed with it."""

    def __init__(self) -> None:
        self._conns: set[ClientSide] = set()

    def add(self, conn: ClientSide) -> None:
        self._conns.add(conn)

    def discard(self, conn: ClientSide) -> None:
        self._conns.discard(conn)

    def __len__(self) -> int:
        return len(self._conns)

    def abort_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()


class _Side(asyncio.Protocol):
    """What both sides share: the transport, the peer, and who paused our reading."""

    transport: asyncio.Transport | None = None
    peer: _Side | None = None
    closed = False
    # Reading is paused while either holds: we wait for the peer to exist, or the peer's buffer is full.
    _waiting_for_peer = False
    _peer_full = False

    def _update_reading(self) -> None:
        t = self.transport
        if t is None or self.closed or t.is_closing():
            return
        # Both calls are idempotent; the loop may not be reading yet (uvloop starts after connection_made).
        if self._waiting_for_peer or self._peer_full:
            t.pause_reading()
        else:
            t.resume_reading()

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write(data)

    def eof_received(self) -> bool:
        # The node closing ends the session: close both (pending writes are flushed first).
        self._close_both()
        return False

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_full = True
            self.peer._update_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer._peer_full = False
            self.peer._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            log.debug("%s connection lost: %s", type(self).__name__, type(exc).__name__)
        self._close_both()
        self._forget()

    def _forget(self) -> None:
        pass

    def _close_both(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def abort(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.abort()


class UpstreamSide(_Side):
    """The connection to the node's unix socket."""

    def __init__(self, client: ClientSide) -> None:
        self.peer = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but has the same methods.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)


class ClientSide(_Side):
    """An accepted client connection; connects to the listener's current target on arrival."""

    def __init__(self, target: Callable[[], str], conns: ConnectionSet, port: int) -> None:
        self._target = target
        self._conns = conns
        self._port = port
        self._connect_task: asyncio.Task[Any] | None = None
        # Bytes that arrived before the node connection was up (reading is paused right after).
        self._early: list[bytes] = []
        self._client_eof = False
        self._tls = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but has the same methods.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        self._tls = transport.get_extra_info("ssl_object") is not None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._conns.add(self)
        self._waiting_for_peer = True
        self._connect_task = asyncio.get_running_loop().create_task(self._connect(self._target()))

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write(data)
        else:
            self._early.append(data)
            self._update_reading()

    def eof_received(self) -> bool:
        # A plain client that half-closes (``printf 'PING\r\n' | nc``) still gets its replies: pass the
        # EOF on to the node and keep our side open for writing until the node closes. A TLS transport
        # cannot stay open after close_notify, so TLS closes both.
        self._client_eof = True
        peer = self.peer
        if self._tls:
            self._close_both()
            return False
        if peer is None:
            return True  # forwarded once the node connection is up
        if peer.transport is not None and not peer.transport.is_closing() and peer.transport.can_write_eof():
            peer.transport.write_eof()
            return True
        self._close_both()
        return False

    async def _connect(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, upstream = await asyncio.wait_for(
                loop.create_unix_connection(lambda: UpstreamSide(self), path), CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError) as e:
            log.debug("port %s: target unavailable (%s)", self._port, type(e).__name__)
            if self.transport is not None:
                self.transport.close()
            return
        except asyncio.CancelledError:
            if self.transport is not None:
                self.transport.abort()
            raise
        if self.closed:
            transport.close()
            return
        self.peer = upstream
        early, self._early = self._early, []
        for chunk in early:
            transport.write(chunk)
        if self._client_eof:
            transport.write_eof()
        self._waiting_for_peer = False
        self._update_reading()

    def _forget(self) -> None:
        self._conns.discard(self)
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()

    def abort(self) -> None:
        self.closed = True
        super().abort()
        self._forget()
