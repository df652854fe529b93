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


@dataclass(frozen=True)
class RouteTable:
    """Everything the gateway listens on, with the certificate for TLS routes."""

    routes: tuple[Route, ...]
    cert_file: str
    key_file: str
