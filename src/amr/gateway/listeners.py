"""One listener per route: a listening socket per bind address, and the connections it accepted.

Accepting is done here rather than by ``loop.create_server`` so that the checks that need no bytes
from the client (brute-force block, firewall) run on the raw socket: a refused client is closed before
any TLS handshake and is sent nothing. Admitted sockets are handed to the loop with
``connect_accepted_socket`` (TLS handshake included, bounded by the authentication deadline).

Out of file descriptors (EMFILE/ENFILE on accept, or on a node connect), a listener stops accepting
for ``ACCEPT_PAUSE`` and tries again: the pending connections wait in the kernel's backlog instead of
the loop spinning on a listening socket that stays readable. Open connections are not affected, and
the log says so once per burst.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Sequence

from amr.gateway.context import GatewayContext
from amr.gateway.primary import PrimaryTracker
from amr.gateway.router_topology import ClusterTopology
from amr.gateway.routing.pool import LinkPool
from amr.gateway.splice import ClientSide
from amr.gateway.tls import TlsContexts
from amr.logcontext import bind_log_context, log_context_for
from amr.logic.dataplane.descriptors import ACCEPT_PAUSE
from amr.logic.security.firewall import SourceMatcher
from amr.model.routes import Route

log = logging.getLogger(__name__)

BACKLOG = 511
# Connections accepted per readiness callback before giving other callbacks a turn.
ACCEPT_BATCH = 64


def bind_listening_sockets(hosts: Sequence[str], port: int, reuse_port: bool = False) -> list[socket.socket]:
    """A non-blocking listening socket on ``port`` for every address of every host; OSError if any
    cannot be bound (the others are closed again)."""
    socks: list[socket.socket] = []
    try:
        seen: set[tuple[int, object]] = set()
        for host in hosts:
            for family, kind, proto, _name, addr in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            ):
                if (family, addr[0]) in seen:
                    continue
                seen.add((family, addr[0]))
                sock = socket.socket(family, kind, proto)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(BACKLOG)
                sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


class Listener:
    """Serves one route on every bind address: accepts, applies firewall, limits and the
    authentication phase, and splices each admitted connection to ``route.target``."""

    def __init__(
        self, hosts: Sequence[str], route: Route, ctx: GatewayContext, reuse_port: bool = False
    ) -> None:
        self.hosts = tuple(hosts)
        self.route = route
        self.ctx = ctx
        self.reuse_port = reuse_port
        self.matcher = SourceMatcher(route.allowed_sources)
        self.connections: set[ClientSide] = set()
        self.closed = False
        self._socks: list[socket.socket] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resume_handle: asyncio.TimerHandle | None = None
        self.tracker: PrimaryTracker | None = None
        self._topology: ClusterTopology | None = None
        self._link_pool: LinkPool | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def target(self) -> str:
        """The node socket a new connection goes to: the primary the tracker follows, if any."""
        return self.tracker.current if self.tracker is not None else self.route.target

    def cluster_topology(self) -> ClusterTopology:
        """The slot map of an EnterpriseCluster route, shared by its routed connections (read from
        the nodes in the background once the first connection needs it)."""
        if self._topology is None:
            self._topology = ClusterTopology(self.route.nodes, self.ctx)
            self._topology.start()
        return self._topology

    def link_pool(self) -> LinkPool | None:
        """The node connections shared by this route's routed clients (None when sharing is off)."""
        if self._link_pool is None and self.ctx.settings.shared_node_links and not self.closed:
            topology = self.cluster_topology()
            self._link_pool = LinkPool(asyncio.get_running_loop(), topology.refresh_soon)
        return self._link_pool

    def _start_tracker(self, current: str) -> None:
        candidates = self.route.candidates
        if len(candidates) < 2:
            return
        self.tracker = PrimaryTracker(
            candidates,
            current if current in candidates else self.route.target,
            self.ctx.node_password_for(candidates[0]) if self.ctx.node_password else "",
            self.ctx.settings.primary_poll_ms / 1000,
            self._primary_changed,
        )
        # Its polling tasks log about this database's nodes: they run with the database bound.
        log_context_for(database=self.route.database_id).run(self.tracker.start)

    async def _stop_tracker(self) -> None:
        tracker, self.tracker = self.tracker, None
        if tracker is not None:
            await tracker.stop()

    def _primary_changed(self, old: str, new: str) -> None:
        """New connections already go to ``new``; close those to ``old`` so their clients reconnect
        (the old primary is a replica now, or gone)."""
        # Routed (EnterpriseCluster) connections follow the slot map instead.
        moved = [c for c in self.connections if c.target == old and c.router is None]
        for conn in moved:
            conn.close_for("primary_changed")
        log.info(
            "port %s: primary is now %s; closed %d connections to %s", self.route.port, new, len(moved), old
        )

    async def start(self, tls: TlsContexts) -> None:
        """Bind and listen; raise OSError if the port cannot be bound, GatewayError if TLS cannot load."""
        self._ssl = tls.context_for(self.route.min_tls_version) if self.route.tls else None
        self._loop = loop = asyncio.get_running_loop()
        self._socks = bind_listening_sockets(self.hosts, self.route.port, self.reuse_port)
        for sock in self._socks:
            loop.add_reader(sock.fileno(), self._accept, sock)
        self._start_tracker(self.route.target)
        log.info(
            "listening on %s port %s (%s) for %s",
            ",".join(self.hosts),
            self.route.port,
            "tls" if self._ssl is not None else "plain",
            self.route.database_id or self.route.target,
        )

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    self.descriptors_exhausted(e.errno)
                    return
                # ECONNABORTED and the like: that one connection is gone; try the next readiness.
                log.debug("accept on port %s failed: %s", self.route.port, type(e).__name__)
                return
            self._admit(conn, str(addr[0]), int(addr[1]))

    def descriptors_exhausted(self, err: int) -> None:
        """The process is out of file descriptors (``err`` is EMFILE or ENFILE): pause accepting on
        this listener for ``ACCEPT_PAUSE`` and log once per burst."""
        ctx = self.ctx
        if ctx.descriptors.record(ctx.clock()):
            more = ctx.descriptors.suppressed
            log.warning(
                "out of file descriptors (%s) on port %s: accepts paused %d ms at a time while it lasts; "
                "open connections are unaffected%s",
                errno.errorcode.get(err, str(err)),
                self.route.port,
                int(ACCEPT_PAUSE * 1000),
                f" (the previous burst had {more} more failures)" if more else "",
            )
        loop = self._loop
        if loop is None or self.closed or self._resume_handle is not None:
            return
        for sock in self._socks:
            loop.remove_reader(sock.fileno())
        self._resume_handle = loop.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume_handle = None
        loop = self._loop
        if loop is None or self.closed:
            return
        for sock in self._socks:
            loop.add_reader(sock.fileno(), self._accept, sock)

    def _admit(self, conn: socket.socket, source: str, source_port: int) -> None:
        ctx = self.ctx
        now = ctx.clock()
        route = self.route
        if ctx.guard.is_blocked(source, now):
            conn.close()
            ctx.audit.event("auth_blocked", route.database_id, route.port, source, source_port, "cooldown")
            return
        if not self.matcher.allows(source):
            conn.close()
            ctx.audit.event("firewall_deny", route.database_id, route.port, source, source_port)
            return
        assert self._loop is not None
        task = self._loop.create_task(self._handshake(conn, source, source_port, now))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(
        self, conn: socket.socket, source: str, source_port: int, accepted_at: float
    ) -> None:
        assert self._loop is not None
        ctx = self.ctx
        route = self.route
        # This task's context is the connection's: its transport's callbacks run in a copy of it.
        bind_log_context(database=route.database_id, client=f"{source}:{source_port}")

        def protocol() -> ClientSide:
            return ClientSide(self, source, source_port, accepted_at)

        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(protocol, conn)
                return
            timeout = max(accepted_at + ctx.settings.auth_timeout - ctx.clock(), 0.001)
            await self._loop.connect_accepted_socket(
                protocol, conn, ssl=self._ssl, ssl_handshake_timeout=timeout
            )
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, ssl.SSLError, EOFError) as e:
            conn.close()
            if self._ssl is None:
                log.debug("port %s: accepted socket unusable: %s", route.port, type(e).__name__)
                return
            if (
                isinstance(e, ConnectionAbortedError)
                and ctx.clock() >= accepted_at + ctx.settings.auth_timeout - 0.05
            ):
                event, reason = "auth_timeout", "tls handshake not finished in time"
            elif isinstance(e, ssl.SSLError):
                event, reason = "tls_failure", str(e.reason or type(e).__name__)
            else:
                event, reason = "tls_failure", type(e).__name__
            ctx.audit.event(event, route.database_id, route.port, source, source_port, reason)

    def retarget(self, route: Route) -> None:
        """Apply ``route`` in place: new connections go to ``route.target`` (connected ones stay; an
        open one that has not sent anything yet connects to the new target), and the access and limit
        changes of ``update`` apply."""
        if route.target != self.route.target:
            log.info("port %s now forwards to %s", route.port, route.target)
        self.update(route)

    def update(self, route: Route) -> None:
        """Apply ``route``'s access list and connection limit in place: the listening sockets and the
        allowed connections stay; open connections from sources no longer allowed are closed."""
        old = self.route
        self.route = route
        if route.nodes != old.nodes and self._topology is not None:
            self._topology.set_nodes(route.nodes)
            if self._link_pool is not None:
                self._link_pool.retire({node.socket for node in route.nodes})
        if route.candidates != old.candidates and self._loop is not None and not self.closed:
            tracker, self.tracker = self.tracker, None
            current = tracker.current if tracker is not None else old.target
            if tracker is not None:
                task = self._loop.create_task(tracker.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
            self._start_tracker(current)
        if route.allowed_sources != old.allowed_sources:
            self.matcher = SourceMatcher(route.allowed_sources)
            denied = [c for c in self.connections if not self.matcher.allows(c.source)]
            for conn in denied:
                conn.abort("firewall")
            if denied:
                log.info("port %s: closed %d connections no longer allowed", route.port, len(denied))

    async def stop(self) -> None:
        """Stop listening and close every connection this listener accepted."""
        self.closed = True
        await self._stop_tracker()
        topology, self._topology = self._topology, None
        if topology is not None:
            await topology.stop()
        pool, self._link_pool = self._link_pool, None
        if pool is not None:
            pool.close()
        loop = self._loop
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        for sock in self._socks:
            if loop is not None:
                loop.remove_reader(sock.fileno())
            sock.close()
        self._socks = []
        for task in list(self._handshakes):
            task.cancel()
        count = len(self.connections)
        for conn in list(self.connections):
            conn.abort("route_removed")
        self.connections.clear()
        route = self.route
        self.ctx.clients.forget_nodes([route.target, *route.candidates, *(n.socket for n in route.nodes)])
        log.info("stopped listening on port %s (closed %d connections)", self.route.port, count)
