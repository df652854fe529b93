"""Admitting a client connection once its transport is up (TLS handshake included): the checks
that need no bytes from it and may have changed since it was accepted (the route went away, the
firewall changed), the database's connection limit over all its routes, and the socket's options.
``ListenerView`` is what a client connection asks of the listener that accepted it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, MutableSet
from typing import Any, Protocol

from amr.gateway.context import GatewayContext
from amr.gateway.router_topology import ClusterTopology
from amr.gateway.routing.pool import LinkPool
from amr.logic.security.firewall import SourceMatcher
from amr.model.routes import Route

MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"


class ListenerView(Protocol):
    """What a client connection asks of the listener that accepted it (``amr.gateway.listeners``)."""

    @property
    def route(self) -> Route: ...

    @property
    def ctx(self) -> GatewayContext: ...

    @property
    def matcher(self) -> SourceMatcher: ...

    @property
    def closed(self) -> bool: ...

    @property
    def connections(self) -> MutableSet[Any]:
        """The listener's open client connections."""

    @property
    def target(self) -> str:
        """The node socket a new connection goes to."""

    def cluster_topology(self) -> ClusterTopology: ...

    def link_pool(self) -> LinkPool | None: ...

    def descriptors_exhausted(self, err: int) -> None: ...


def admit_connection(
    listener: ListenerView,
    source: str,
    count_key: str,
    transport: asyncio.Transport,
    audit: Callable[..., None],
) -> bool:
    """Count a new connection from ``source`` against its database's limit (``count_key``); or refuse
    it (``audit`` told why, unless the route is gone) and close its transport."""
    if listener.closed:  # the route went away during the TLS handshake
        transport.abort()
        return False
    if not listener.matcher.allows(source):  # the firewall changed during the handshake
        audit("firewall_deny")
        transport.abort()
        return False
    # The limit is the database's, over all its routes (database port and node ports).
    counts = listener.ctx.connections
    count = counts.get(count_key, 0)
    limit = listener.route.max_connections
    if limit > 0 and count >= limit:
        audit("limit_deny", "max connections")
        transport.write(MAX_CLIENTS_REPLY)
        transport.close()
        return False
    counts[count_key] = count + 1
    return True


def release_connection(ctx: GatewayContext, count_key: str) -> None:
    """An admitted connection closed: it no longer counts against its database's limit."""
    counts = ctx.connections
    left = counts.get(count_key, 0) - 1
    if left > 0:
        counts[count_key] = left
    else:
        counts.pop(count_key, None)


def set_no_delay(transport: asyncio.Transport) -> None:
    """Replies go out as soon as they are written (no Nagle delay) on a TCP client connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
