"""What the gateway forwards: one route per public port."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterNode:
    """A node of an EnterpriseCluster database, as the gateway's router needs it: the unix socket to
    reach it, the port it announces in CLUSTER SLOTS/SHARDS (to map a slot map or a MOVED reply to the
    socket) and its shard."""

    socket: str
    port: int
    shard: int


@dataclass(frozen=True)
class Route:
    """A public port and the unix socket of the node that answers it."""

    port: int
    tls: bool
    target: str
    database_id: str
    min_tls_version: str = "1.2"
    # Who may connect: None lets every source in; otherwise only sources inside one of these
    # inclusive (first, last) address ranges, IPv4 or IPv6 (see amr.logic.security.firewall).
    allowed_sources: tuple[tuple[str, str], ...] | None = None
    # Open client connections allowed on this route at once (the SKU's limit); 0 means no limit.
    max_connections: int = 0
    # Unix sockets of every node that may be the primary behind this port (the initial primary first).
    # With more than one, the gateway asks each for its ROLE and sends new connections to the one that
    # is primary now; empty means just ``target``.
    candidates: tuple[str, ...] = ()
    # "splice": after authentication, bytes go to the target as they are. "cluster": an
    # EnterpriseCluster database port; after authentication the gateway routes each command by hash
    # slot over ``nodes`` (every node of the database).
    mode: str = "splice"
    nodes: tuple[ClusterNode, ...] = ()


@dataclass(frozen=True)
class RouteTable:
    """Everything the gateway listens on, with the certificate for TLS routes."""

    routes: tuple[Route, ...]
    cert_file: str
    key_file: str
