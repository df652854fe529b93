"""Follows routes.json and keeps the listeners in line with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from amr.errors import GatewayError
from amr.gateway.context import GatewayContext
from amr.gateway.listeners import Listener
from amr.gateway.tls import TlsContexts
from amr.home import FollowedFile
from amr.logic.gateway_plan import plan_listener_changes
from amr.logic.routes import parse_route_table
from amr.model.routes import Route, RouteTable

log = logging.getLogger(__name__)

EMPTY_TABLE = RouteTable(routes=(), cert_file="", key_file="")


class RoutesWatcher:
    """Polls the routes file (a cheap ``os.stat``, amr.home.FollowedFile) and applies each change to
    the listeners.

    A missing file means no routes; a malformed one is logged once per change and the previous routes
    stay. A port that cannot be bound (or a TLS route whose certificate cannot load) is logged once per
    distinct error and retried on every poll, without affecting other routes.
    """

    def __init__(
        self,
        routes_file: Path,
        bind_hosts: Sequence[str],
        poll_interval: float,
        ctx: GatewayContext,
        reuse_port: bool = False,
    ) -> None:
        self.routes_file = routes_file
        self.bind_hosts = tuple(bind_hosts)
        self.ctx = ctx
        self.reuse_port = reuse_port
        self.poll_interval = max(poll_interval, 0.01)
        self.listeners: dict[int, Listener] = {}
        self.tls = TlsContexts()
        self._table = EMPTY_TABLE
        self._file = FollowedFile(routes_file)
        self._start_errors: dict[int, str] = {}
        self._stat_error = ""

    @property
    def desired(self) -> dict[int, Route]:
        return {r.port: r for r in self._table.routes}

    def _read_table(self) -> None:
        look = self._file.look()
        if look.error:
            if self._stat_error != look.error:
                log.error("cannot read %s: %s; keeping the previous routes", self.routes_file, look.error)
            self._stat_error = look.error
            return
        self._stat_error = ""
        if not look.changed:
            return
        if look.text is None:
            if self._table.routes:
                log.info("%s is gone: no routes", self.routes_file)
            self._table = EMPTY_TABLE
            return
        try:
            table = parse_route_table(look.text)
        except GatewayError as e:
            log.error("%s: %s; keeping the previous routes", self.routes_file, e)
            return
        self._table = table
        self.tls.set_files(table.cert_file, table.key_file)
        log.info("loaded %d routes from %s", len(table.routes), self.routes_file)

    async def poll_once(self) -> None:
        """Read the file if it changed, reload certificates if they changed, converge the listeners."""
        self._read_table()
        if any(r.tls for r in self._table.routes):
            self.tls.refresh()
        desired = self.desired
        running = {port: lst.route for port, lst in self.listeners.items()}
        for change in plan_listener_changes(running, desired):
            port, route = change.port, change.route
            if change.action in ("stop", "restart"):
                listener = self.listeners.pop(port, None)
                if listener is not None:
                    await listener.stop()
            if change.action == "retarget" and route is not None:
                self.listeners[port].retarget(route)
            if change.action == "update" and route is not None:
                self.listeners[port].update(route)
            if change.action in ("start", "restart") and route is not None:
                await self._start(route)
        for port in list(self._start_errors):
            if port not in desired:
                del self._start_errors[port]

    async def _start(self, route: Route) -> None:
        listener = Listener(self.bind_hosts, route, self.ctx, self.reuse_port)
        try:
            await listener.start(self.tls)
        except (OSError, GatewayError) as e:
            message = str(e)
            if self._start_errors.get(route.port) != message:
                log.error("cannot listen on port %s: %s; retrying", route.port, message)
            self._start_errors[route.port] = message
            return
        if self._start_errors.pop(route.port, None) is not None:
            log.info("port %s is listening after earlier failures", route.port)
        self.listeners[route.port] = listener

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, then close every listener and connection."""
        try:
            while not stop.is_set():
                try:
                    await self.poll_once()
                except Exception:  # a bug here must not take the data plane down
                    log.exception("routes poll failed")
                try:
                    # asyncio.timeout rather than wait_for, which on Python 3.11 can swallow a
                    # cancellation.
                    async with asyncio.timeout(self.poll_interval):
                        await stop.wait()
                except TimeoutError:
                    pass
        finally:
            await self.close()

    async def close(self) -> None:
        listeners, self.listeners = self.listeners, {}
        for listener in listeners.values():
            await listener.stop()
