"""The routes file: the control plane renders it, the gateway parses it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from amr.errors import GatewayError
from amr.logic.firewall import AddressRange, plan_allowed_sources
from amr.logic.versioned_file import parse_versioned_json
from amr.model.enums import ClientProtocol, ClusteringPolicy, ProvisioningState, Toggle
from amr.model.node import Role
from amr.model.resources import Cluster, Database
from amr.model.routes import ClusterNode, Route, RouteTable
from amr.model.sku import sku_by_name

# Version 1 throughout: "mode" and "nodes" are optional (absent means a spliced route), so a file
# written before them still parses, and one without cluster routes renders as before.
ROUTES_FORMAT_VERSION = 1
MODE_SPLICE = "splice"
MODE_CLUSTER = "cluster"


def _render_route(r: Route) -> dict[str, Any]:
    body: dict[str, Any] = {
        "port": r.port,
        "tls": r.tls,
        "minTlsVersion": r.min_tls_version,
        "allowedSources": None
        if r.allowed_sources is None
        else [[first, last] for first, last in r.allowed_sources],
        "maxConnections": r.max_connections,
        "target": r.target,
        "candidates": list(r.candidates),
        "databaseId": r.database_id,
    }
    if r.mode != MODE_SPLICE:
        body["mode"] = r.mode
        body["nodes"] = [{"socket": n.socket, "port": n.port, "shard": n.shard} for n in r.nodes]
    return body


def _parse_route(r: Any) -> Route:
    mode = str(r.get("mode", MODE_SPLICE))
    if mode not in (MODE_SPLICE, MODE_CLUSTER):
        raise GatewayError(f"routes file: port {r.get('port')} has unknown mode {mode!r}")
    return Route(
        port=int(r["port"]),
        tls=bool(r["tls"]),
        target=str(r["target"]),
        database_id=str(r.get("databaseId", "")),
        min_tls_version=str(r.get("minTlsVersion", "1.2")),
        allowed_sources=None
        if r.get("allowedSources") is None
        else tuple((str(a), str(b)) for a, b in r["allowedSources"]),
        max_connections=int(r.get("maxConnections", 0)),
        candidates=tuple(str(c) for c in r.get("candidates") or ()),
        mode=mode,
        nodes=tuple(
            ClusterNode(socket=str(n["socket"]), port=int(n["port"]), shard=int(n["shard"]))
            for n in r.get("nodes") or ()
        ),
    )


def render_route_table(table: RouteTable) -> str:
    """Render a route table as the JSON text of gateway/routes.json."""
    body = {
        "version": ROUTES_FORMAT_VERSION,
        "certFile": table.cert_file,
        "keyFile": table.key_file,
        "routes": [_render_route(r) for r in sorted(table.routes, key=lambda r: r.port)],
    }
    return json.dumps(body, indent=2) + "\n"


def parse_route_table(text: str) -> RouteTable:
    """Parse routes.json text; raise GatewayError saying what is wrong."""
    return parse_versioned_json(text, ROUTES_FORMAT_VERSION, "routes file", GatewayError, _route_table)


def _route_table(data: Any) -> RouteTable:
    routes = tuple(_parse_route(r) for r in data["routes"])
    ports = [r.port for r in routes]
    if len(set(ports)) != len(ports):
        raise GatewayError("routes file lists a port twice")
    return RouteTable(routes=routes, cert_file=str(data["certFile"]), key_file=str(data["keyFile"]))


def plan_route_table(
    databases: list[Database],
    clusters: dict[str, Cluster],
    run_dir: str,
    cert_file: str,
    key_file: str,
    rules: dict[str, list[AddressRange]] | None = None,
    private_networks: tuple[str, ...] = (),
    connection_cap: int = 0,
) -> RouteTable:
    """The routes the gateway should serve: each live database's port goes to its primary (with a
    replica, the route names every node of shard 0 as a candidate, so the gateway can follow a
    failover itself); an
    OSSCluster database also exposes every node on the node's own port (what CLUSTER SLOTS
    announces); an EnterpriseCluster database port is a ``cluster`` route listing every node (socket,
    announced port, shard) for the gateway's router, and its nodes get no public ports. Failed and
    deleting databases get no route. Each route carries who may connect
    (firewall rules of the cache, public network access, private networks) and the SKU's
    connection limit."""
    routes: list[Route] = []
    for db in databases:
        cluster = clusters.get(db.cluster_key)
        if cluster is None or db.provisioning_state in (ProvisioningState.FAILED, ProvisioningState.DELETING):
            continue
        primaries = [n for n in db.nodes if n.role is Role.PRIMARY and n.shard == 0]
        if not primaries:
            continue
        sku = sku_by_name(cluster.sku_name)
        shard0 = [primaries[0]] + [n for n in db.nodes if n.shard == 0 and n is not primaries[0]]
        template = Route(
            port=db.port,
            tls=db.client_protocol is ClientProtocol.ENCRYPTED,
            target=node_socket_path(run_dir, primaries[0].name),
            database_id=db.id,
            min_tls_version=cluster.minimum_tls_version.value,
            allowed_sources=plan_allowed_sources(
                cluster.public_network_access is Toggle.ENABLED,
                (rules or {}).get(cluster.key, []),
                private_networks,
            ),
            max_connections=choose_connection_limit(sku.max_connections if sku else 0, connection_cap),
        )
        route = (
            replace(template, candidates=tuple(node_socket_path(run_dir, n.name) for n in shard0))
            if len(shard0) > 1
            else template
        )
        if db.clustering_policy is ClusteringPolicy.ENTERPRISE_CLUSTER:
            route = replace(
                route,
                mode=MODE_CLUSTER,
                nodes=tuple(
                    ClusterNode(node_socket_path(run_dir, n.name), n.port, n.shard)
                    for n in sorted(db.nodes, key=lambda n: (n.shard, n.name))
                ),
            )
        routes.append(route)
        if db.clustering_policy is ClusteringPolicy.OSS_CLUSTER:
            for node in db.nodes:
                routes.append(replace(template, port=node.port, target=node_socket_path(run_dir, node.name)))
    return RouteTable(routes=tuple(routes), cert_file=cert_file, key_file=key_file)


def choose_connection_limit(sku_limit: int, cap: int) -> int:
    """The connection limit a database's routes enforce: the SKU's, lowered by the installation's cap
    (0 means no cap)."""
    if cap <= 0:
        return sku_limit
    return min(sku_limit, cap) if sku_limit > 0 else cap


def node_socket_path(run_dir: str, node_name: str) -> str:
    """Where a node's unix socket lives."""
    return f"{run_dir}/{node_name}.sock"
