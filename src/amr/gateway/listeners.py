"""One listening socket per route, and the connections it accepted."""

from __future__ import annotations

import asyncio
import logging

from amr.gateway.splice import ClientSide, ConnectionSet
from amr.gateway.tls import TlsContexts
from amr.model.routes import Route

log = logging.getLogger(__name__)

SSL_HANDSHAKE_TIMEOUT = 10.0
BACKLOG = 511


class Listener:
    """Serves one route: accepts on (host, route.port) and splices each connection to route.target."""

    def __init__(self, host: str, route: Route) -> None:
        self.host = host
        self.route = route
        self.connections = ConnectionSet()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, tls: TlsContexts) -> None:
        """Bind and listen; raise OSError if the port cannot be bound, GatewayError if TLS cannot load."""
        ssl_ctx = tls.context_for(self.route.min_tls_version) if self.route.tls else None
        loop = asyncio.get_running_loop()
        port = self.route.port
        self._server = await loop.create_server(
            lambda: ClientSide(self._current_target, self.connections, port),
            self.host,
            port,
            ssl=ssl_ctx,
            ssl_handshake_timeout=SSL_HANDSHAKE_TIMEOUT if ssl_ctx is not None else None,
            reuse_address=True,
            backlog=BACKLOG,
        )
        log.info(
            "listening on %s:%s (%s) for %s",
            self.host,
            port,
            "tls" if ssl_ctx is not None else "plain",
            self.route.database_id or self.route.target,
        )

    def _current_target(self) -> str:
        return self.route.target

    def retarget(self, route: Route) -> None:
        """New connections go to ``route.target``; open ones stay where they are."""
        if route.target != self.route.target:
            log.info("port %s now forwards to %s", route.port, route.target)
        self.route = route

    async def stop(self) -> None:
        """Stop listening and close every connection this listener accepted."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        count = len(self.connections)
        self.connections.abort_all()
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except (TimeoutError, OSError):
                pass
        log.info("stopped listening on port %s (closed %d connections)", self.route.port, count)
