"""What the gateway forwards: one route per public port."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """A public port and the unix socket of the node that answers it."""

    port: int
    tls: bool
    target: str
    database_id: str
    min_tls_version: str = "1.2"
    # Who may connect: None lets every source in; otherwise only sources inside one of these
    # inclusive (first, last) address ranges, IPv4 or IPv6 (see amr.logic.firewall).
    allowed_sources: tuple[tuple[str, str], ...] | None = None
    # Open client connections allowed on this route at once (the SKU's limit); 0 means no limit.
    max_connections: int = 0
    # Unix sockets of every node that may be the primary behind this port (the initial primary first).
    # With more than one, the gateway asks each for its ROLE and sends new connections to the one that
    # is primary now; empty means just ``target``.
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteTable:
    """Everything the gateway listens on, with the certificate for TLS routes."""

    routes: tuple[Route, ...]
    cert_file: str
    key_file: str
