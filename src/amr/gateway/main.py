"""The gateway process: runs the routes watcher on uvloop until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import uvloop

from amr.errors import ConfigError
from amr.gateway.audit import AuditLog, audit_path_for_worker
from amr.gateway.context import GatewayContext
from amr.gateway.guard_table import GUARD_FILE, SharedAuthFailureGuard, open_shared_guard
from amr.gateway.routes_watcher import RoutesWatcher
from amr.home import read_secret
from amr.settings import Settings
from amr.signals import stop_on_signals

log = logging.getLogger(__name__)


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Client misbehaviour (resets, failed handshakes, garbage) is routine for a public endpoint:
    log it at debug level, by type only, so nothing a client sent can reach the logs."""
    exc = context.get("exception")
    if isinstance(exc, (OSError, ssl.SSLError, EOFError)):
        log.debug("%s: %s", context.get("message", "connection error"), type(exc).__name__)
        return
    log.error("unexpected event loop error: %s", context.get("message"), exc_info=exc)


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, worker: int = 0, reuse_port: bool = False
) -> None:
    """Serve the routes in ``settings.routes_file`` until ``stop`` is set (or SIGTERM/SIGINT).

    ``worker`` numbers this process among the gateway's workers (its audit file); ``reuse_port``
    binds with SO_REUSEPORT so several workers can share each port."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_exception_handler)
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    gw = settings.gateway
    audit = AuditLog(audit_path_for_worker(settings.audit_file, worker), gw.audit_max_bytes, gw.audit_backups)
    try:
        node_password = read_secret(settings, "gateway.secret")
    except ConfigError as e:
        # Without it the gateway cannot ask nodes for their role (each HA route then warns once, and
        # keeps its initial primary); a gateway serving no HA database never needs it.
        log.info("%s; asking nodes for their role without it", e)
        node_password = ""
    # Failed AUTHs are counted in one table all workers share (so the limit holds across them).
    guard = open_shared_guard(settings.routes_file.parent / GUARD_FILE, gw)
    ctx = GatewayContext.create(gw, audit, node_password, guard, worker, settings.run_dir)
    watcher = RoutesWatcher(
        settings.routes_file, gw.bind_hosts, gw.route_poll_interval, ctx, reuse_port=reuse_port
    )
    log.info("gateway started; routes from %s", settings.routes_file)
    try:
        await ctx.clients.start()
        await watcher.run(stop)
    finally:
        await ctx.clients.close()
        audit.close()
        if isinstance(guard, SharedAuthFailureGuard):
            guard.close()
    log.info("gateway stopped")


def run_gateway(settings: Settings, worker: int = 0) -> None:
    """Run gateway worker ``worker`` in this process until SIGTERM or SIGINT (blocking).

    With ``gateway.workers`` > 1 the supervisor runs that many of these processes; they all bind
    every port with SO_REUSEPORT and the kernel spreads new connections across them. The caller sets
    up logging (amr.logcontext.configure_logging)."""
    uvloop.run(serve(settings, worker=worker, reuse_port=settings.gateway.workers > 1))
