"""A client connection and its node connection: the authentication phase, then a byte splice.

Two asyncio Protocols, one per side; the node connection opens when the client sends its first
bytes. Until the client has authenticated, ``amr.logic.dataplane.authphase`` parses its commands
(bounded, the engine's parsing rules), the client side forwards them in order (one that can decide
authentication at a time) and the node's replies go back through the phase to learn which one
answers AUTH/HELLO AUTH and what it said; input the phase cannot read as the engine would is
refused, and a connection not authenticated at the deadline is cut. Then the client's bytes go to
the node through ``amr.gateway.splice_intercept`` (a C framing scan per chunk, for the commands the
gateway answers itself) and the node's straight to the client, neither copied nor logged.
Admission is ``amr.gateway.admission``'s, the node side ``upstream``'s.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any, cast

from amr.gateway.admission import ListenerView, admit_connection, release_connection, set_no_delay
from amr.gateway.client_ops import RoutedIdentity
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.router import Router
from amr.gateway.splice_intercept import SpliceInterceptor
from amr.gateway.upstream import WRITE_HIGH_WATER, WRITE_LOW_WATER, UpstreamSide, pause_peer, resume_peer
from amr.logic.dataplane.authphase import AuthPhase, PendingLimitError
from amr.logic.resp.requests import RespProtocolError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


class ClientSide(asyncio.Protocol):
    """An accepted client connection: admitted (limits), authenticated (watched), then spliced. Its
    node connection opens when it first sends: an idle one costs a descriptor, never the engine."""

    __slots__ = (
        "listener", "source", "source_port", "accepted_at", "database_id", "port", "transport", "upstream",
        "bytes_in", "reason", "admitted", "authenticated", "closed", "_splice", "_phase", "_early",
        "_client_eof", "_eof_forwarded", "_tls", "_timer", "_connect_task", "_started", "_count_key",
        "target", "router", "clients",
    )  # fmt: skip

    def __init__(self, listener: ListenerView, source: str, source_port: int, accepted_at: float) -> None:
        self.listener = listener
        self.source = source
        self.source_port = source_port
        self.accepted_at = accepted_at
        self.database_id = listener.route.database_id
        self.port = listener.route.port
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamSide | None = None
        self.bytes_in = 0
        self.reason = ""
        self.admitted = False
        self.authenticated = False
        self.closed = False
        self._splice: Callable[[bytes], object] | None = None
        self._phase: AuthPhase | None = None
        self._early: list[bytes] = []
        self._client_eof = False
        self._eof_forwarded = False
        self._tls = False
        self._timer: asyncio.TimerHandle | None = None
        self._connect_task: asyncio.Task[Any] | None = None
        self._started = 0.0
        self._count_key = self.database_id or f":{self.port}"
        self.target = ""  # the node socket this connection goes to, once it connects
        # An EnterpriseCluster connection, once authenticated: routes commands across the shards.
        self.router: Router | None = None
        # Once authenticated: what answers its CLIENT commands (and knows its client id).
        self.clients: SpliceInterceptor | RoutedIdentity | None = None

    # -- events ---------------------------------------------------------------------------------

    def audit(self, event: str, reason: str | None = None, **extra: int) -> None:
        self.listener.ctx.audit.event(
            event, self.database_id, self.port, self.source, self.source_port, reason, **extra
        )

    # -- client transport callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but has the same methods.
        self.transport = transport = cast(asyncio.Transport, transport)
        listener = self.listener
        ctx = listener.ctx
        if not admit_connection(listener, self.source, self._count_key, transport, self.audit):
            return
        self.admitted = True
        self._started = ctx.clock()
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        self._tls = transport.get_extra_info("ssl_object") is not None
        set_no_delay(transport)
        listener.connections.add(self)
        self.audit("connect")
        remaining = self.accepted_at + ctx.settings.auth_timeout - self._started
        self._timer = asyncio.get_running_loop().call_later(max(remaining, 0.0), self._auth_timed_out)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        w = self._splice
        if w is not None:
            w(data)
            return
        if self._connect_task is None:
            self._first_data(data)
            return
        self._request_data(data)

    def eof_received(self) -> bool:
        # A plain client that half-closes (``printf 'AUTH x\r\nPING\r\n' | nc``) still gets its
        # replies: pass the EOF on to the node and keep our side open for writing until the node
        # closes. A TLS transport cannot stay open after close_notify, so TLS closes both.
        self._client_eof = True
        if self._tls or not self.admitted or self._connect_task is None:
            self.close_for("client_closed")
            return False
        if self.router is not None:
            self.router.client_eof()
            return True
        self._forward_eof()
        return True

    def _forward_eof(self) -> None:
        """Pass the client's EOF on to the node once nothing the client sent is held back any more:
        commands the phase holds go first, each in its turn (so a half-closed pipeline of guesses
        is still counted one by one), then an incomplete command, then the EOF."""
        phase = self._phase
        if self._eof_forwarded or (phase is not None and phase.waiting):
            return
        up = self.upstream
        t = up.transport if up is not None else None
        if t is None:
            return  # forwarded once the node connection is up
        rest = phase.take_rest() if phase is not None else b""
        if isinstance(self.clients, SpliceInterceptor):
            rest = self.clients.take_held()
        if rest and not t.is_closing():
            t.write(rest)  # an incomplete command: the node drops it at EOF
        self._eof_forwarded = True
        if not t.is_closing() and t.can_write_eof():
            t.write_eof()
            return
        self.close_for("client_closed")

    def pause_writing(self) -> None:
        # The client is not reading: stop reading the node (its replies wait in the node's buffers).
        if self.router is not None:
            self.router.pause_links(True)
        elif self.upstream is not None:
            pause_peer(self.upstream.transport)

    def resume_writing(self) -> None:
        if self.router is not None:
            self.router.pause_links(False)
        elif self.upstream is not None:
            resume_peer(self.upstream.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._splice = None
        if exc is not None:
            log.debug("client connection lost: %s", type(exc).__name__)
        if not self.admitted or self.closed:
            self.closed = True
            return
        self.closed = True
        self._forget()
        if self.clients is not None:
            self.clients.forget()
        router = self.router
        if router is not None:
            router.close()
        up = self.upstream
        if up is not None:
            up._splice = None
            if up.transport is not None and not up.transport.is_closing():
                up.transport.close()
        duration = int((self.listener.ctx.clock() - self._started) * 1000)
        self.audit(
            "disconnect",
            self.reason or "client_closed",
            durationMs=duration,
            bytesIn=self.bytes_in,
            bytesOut=router.bytes_out if router is not None else up.nbytes if up is not None else 0,
        )

    # -- closing ----------------------------------------------------------------------------------

    def _forget(self) -> None:
        self.listener.connections.discard(self)
        release_connection(self.listener.ctx, self._count_key)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()
        self._phase = None
        self._early = []

    def close_for(self, reason: str, at_once: bool = False) -> None:
        """Close both sides, recording ``reason``: after what is already written, or ``at_once``."""
        self.reason = self.reason or reason
        self._splice = None
        for t in (self.transport, self.upstream.transport if self.upstream else None):
            if t is not None and at_once:
                t.abort()
            elif t is not None and not t.is_closing():
                t.close()
        if self.router is not None:
            self.router.close()

    def abort(self, reason: str) -> None:
        """Close both sides at once, dropping unsent data."""
        self.close_for(reason, at_once=True)

    def refuse(self, reply: bytes, event: str | None, reason: str) -> None:
        """Answer with a RESP error and close (the rest of the client's input is not forwarded)."""
        if event is not None:
            self.audit(event, reason)
        self._phase = None
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(reply)
        self.close_for(reason)

    def upstream_lost(self) -> None:
        self.close_for("node_closed")

    def answer_clients(self, args: tuple[bytes, ...], node: str, done: Callable[[bytes, bool], None]) -> None:
        """CLIENT LIST/INFO/KILL/ID of an EnterpriseCluster connection (``amr.gateway.client_ops``)."""
        if isinstance(self.clients, RoutedIdentity):
            self.clients.answer_later(args, node, done)

    # -- authentication phase -------------------------------------------------------------------

    def _auth_timed_out(self) -> None:
        self._timer = None
        if self.authenticated or self.closed:
            return
        self.audit("auth_timeout", "not authenticated in time")
        self.abort("auth_timeout")

    def _first_data(self, data: bytes) -> None:
        """The client's first bytes: start the authentication phase, and connect to the node unless
        those bytes already got the client refused."""
        if self.closed or not self.admitted:
            return
        self._phase = AuthPhase(self.listener.ctx.settings.auth_buffer_limit)
        self._request_data(data)
        t = self.transport
        if self.closed or t is None or t.is_closing():
            return
        self._connect_task = asyncio.get_running_loop().create_task(self._connect())

    def _send_upstream(self, payload: bytes) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            if not up.transport.is_closing():
                up.transport.write(payload)
        else:
            self._early.append(payload)

    def _request_data(self, data: bytes) -> None:
        phase = self._phase
        if phase is None or self.closed:
            return
        try:
            forward = phase.client_data(data)
        except PendingLimitError as e:
            self.refuse(e.reply, "buffer_limit", "pending bytes over the limit")
            return
        except RespProtocolError as e:
            # Input over the phase's limits, or that it cannot read as the engine would, is never
            # forwarded. The reply is one of the parser's fixed texts (the engine's own where the
            # engine refuses the same input), never the client's bytes.
            if e.too_big:
                self.refuse(e.reply, "buffer_limit", "request too large")
            else:
                self.refuse(e.reply, "protocol_error", e.detail)
            return
        if forward:
            self._send_upstream(forward)

    def reply_data(self, data: bytes) -> None:
        """Replies from the node before authentication: pass them on, and judge AUTH's."""
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(data)
        phase = self._phase
        if phase is None:
            return
        try:
            verdicts = phase.node_data(data)
        except RespProtocolError:
            self.close_for("node_protocol_error")
            return
        ctx = self.listener.ctx
        for verdict in verdicts:
            if verdict.outcome == "failure":
                self.audit("auth_failure", verdict.error_code)
                if ctx.guard.record_failure(self.source, ctx.clock()):
                    self.close_for("auth_blocked")
                    return
            else:
                self._authenticated("password" if verdict.outcome == "success" else "no password required")
                return
        released = phase.take_held()
        if released:
            self._send_upstream(released)
        if self._client_eof:
            self._forward_eof()

    def _authenticated(self, how: str) -> None:
        """Switch to the splice: from here on each side writes straight into the other."""
        self.authenticated = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.audit("auth_success", how)
        phase, self._phase = self._phase, None
        up = self.upstream
        t = self.transport
        if up is None or up.transport is None or t is None:
            return
        if self.listener.route.mode == "cluster" and phase is not None:
            self._start_router(phase, up)
            return
        # What the phase held behind the authenticating command, and an incomplete command.
        rest = phase.take_held() + phase.take_rest() if phase is not None else b""
        if t.is_closing() or up.transport.is_closing():
            return
        self.clients = clients = SpliceInterceptor(self, up, self.listener.ctx.clients, self.target)
        self._splice = clients.client_data
        clients.start(rest)
        if self._client_eof:
            self._forward_eof()

    def _start_router(self, phase: AuthPhase, up: UpstreamSide) -> None:
        """Hand the connection to the router: the authenticated node connection becomes its link to
        that node (nothing else is in flight on it: the phase held what followed the AUTH)."""
        held = phase.take_held() + phase.take_rest()
        listener = self.listener
        replay = dict(phase.replay)
        router = Router(
            self, listener.cluster_topology(), replay, listener.link_pool(), listener.ctx.request_budget
        )
        self.router = router
        self.clients = RoutedIdentity(listener.ctx.clients, self, replay)
        up.detached = True
        self.upstream = None
        transport = up.transport
        first: NodeLink | None = None
        if transport is not None and not transport.is_closing():
            first = NodeLink(router.table, self.target)
            transport.set_protocol(first)
            first.transport = transport
        self._splice = router.feed
        router.start(first, held)
        if self._client_eof:
            router.client_eof()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        listener = self.listener
        # The current primary (a failover may have moved it since the route was loaded).
        self.target = path = listener.target
        try:
            # asyncio.timeout rather than wait_for, which on Python 3.11 can swallow a cancellation.
            async with asyncio.timeout(CONNECT_TIMEOUT):
                transport, upstream = await loop.create_unix_connection(lambda: UpstreamSide(self), path)
        except (TimeoutError, OSError) as e:
            if isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE):
                listener.descriptors_exhausted(e.errno)
                self.close_for("no_descriptors")
                return
            log.debug("port %s: target unavailable (%s)", self.port, type(e).__name__)
            self.close_for("node_unavailable")
            return
        except asyncio.CancelledError:
            if self.transport is not None:
                self.transport.abort()
            raise
        if self.closed:
            transport.close()
            return
        self.upstream = upstream
        early, self._early = self._early, []
        for chunk in early:
            transport.write(chunk)
        if self._client_eof:
            self._forward_eof()
