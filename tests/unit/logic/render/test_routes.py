"""The gateway route table: planning, rendering and parsing."""

from __future__ import annotations

import dataclasses

import pytest

from amr.errors import GatewayError
from amr.logic.render.routes import node_socket_path, parse_route_table, plan_route_table, render_route_table
from amr.model.enums import ClientProtocol, ClusteringPolicy, ProvisioningState, TlsVersion, Toggle
from amr.model.node import Role
from amr.model.resources import Cluster, Database, NodeAssignment
from amr.model.routes import ClusterNode, Route, RouteTable

CLUSTER = Cluster("sub", "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED)
OTHER = Cluster(
    "sub", "rg", "c2", "eastus", "Balanced_B0", Toggle.ENABLED, minimum_tls_version=TlsVersion.V1_2
)


def db(cluster: str, port: int, uid: str, **changes: object) -> Database:
    nodes = (
        NodeAssignment(f"{uid}-0-0", 0, Role.PRIMARY, port - 1500),
        NodeAssignment(f"{uid}-0-1", 0, Role.REPLICA, port - 1499),
    )
    base = Database(
        "sub", "rg", cluster, uid, port, "k1", "k2", nodes=nodes,
        clustering_policy=ClusteringPolicy.NO_CLUSTER, provisioning_state=ProvisioningState.SUCCEEDED,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def plan(*dbs: Database, rules: dict[str, list[tuple[str, str]]] | None = None, private: tuple[str, ...] = (),
         clusters: tuple[Cluster, ...] = (CLUSTER, OTHER)) -> RouteTable:  # fmt: skip
    by_key = {c.key: c for c in clusters}
    return plan_route_table(list(dbs), by_key, "/run", "/pki/cert.pem", "/pki/key.pem", rules, private)


def test_routes_carry_firewall_rules_private_networks_and_the_sku_limit() -> None:
    rules = {CLUSTER.key: [("203.0.113.1", "203.0.113.9")]}
    (route,) = plan(db("c1", 10000, "d1"), rules=rules, private=("10.8.0.0/16",)).routes
    assert route.allowed_sources == (("10.8.0.0", "10.8.255.255"), ("203.0.113.1", "203.0.113.9"))
    assert route.max_connections == 15000


def test_public_network_access_disabled_leaves_only_private_networks() -> None:
    closed = dataclasses.replace(CLUSTER, public_network_access=Toggle.DISABLED)
    rules = {CLUSTER.key: [("203.0.113.1", "203.0.113.9")]}
    (route,) = plan(db("c1", 10000, "d1"), rules=rules, clusters=(closed,)).routes
    assert route.allowed_sources == ()
    (route,) = plan(db("c1", 10000, "d1"), rules=rules, private=("10.8.0.0/16",), clusters=(closed,)).routes
    assert route.allowed_sources == (("10.8.0.0", "10.8.255.255"),)


def test_routes_file_round_trip_keeps_access_and_limits() -> None:
    rules = {CLUSTER.key: [("2001:db8::1", "2001:db8::ff")]}
    table = plan(db("c1", 10000, "d1"), rules=rules)
    assert parse_route_table(render_route_table(table)) == table


def test_database_port_routes_to_its_primary() -> None:
    d = db("c1", 10000, "d1")
    table = plan(d)
    assert table.cert_file == "/pki/cert.pem" and table.key_file == "/pki/key.pem"
    candidates = ("/run/d1-0-0.sock", "/run/d1-0-1.sock")
    assert table.routes == (Route(10000, True, "/run/d1-0-0.sock", d.id, "1.2", None, 15000, candidates),)
    assert node_socket_path("/run", "x") == "/run/x.sock"


def test_candidates_name_shard_zero_with_the_initial_primary_first() -> None:
    d = db("c1", 10000, "d1")
    swapped = dataclasses.replace(d, nodes=tuple(reversed(d.nodes)))
    (route,) = plan(swapped).routes
    assert route.candidates == ("/run/d1-0-0.sock", "/run/d1-0-1.sock")
    single = dataclasses.replace(d, nodes=d.nodes[:1])
    (route,) = plan(single).routes
    assert route.candidates == ()
    assert parse_route_table(render_route_table(plan(d))) == plan(d)


def test_oss_cluster_node_ports_have_no_candidates() -> None:
    routes = plan(db("c1", 10000, "d1", clustering_policy=ClusteringPolicy.OSS_CLUSTER)).routes
    assert [len(r.candidates) for r in routes] == [2, 0, 0]


def test_routes_file_without_candidates_parses_to_just_the_target() -> None:
    text = render_route_table(plan(db("c1", 10000, "d1"))).replace('"candidates"', '"ignored"')
    (route,) = parse_route_table(text).routes
    assert route.candidates == () and route.target == "/run/d1-0-0.sock"


def test_plaintext_database_has_no_tls() -> None:
    (route,) = plan(db("c1", 10000, "d1", client_protocol=ClientProtocol.PLAINTEXT)).routes
    assert not route.tls


@pytest.mark.parametrize("state", [ProvisioningState.FAILED, ProvisioningState.DELETING])
def test_failed_and_deleting_databases_get_no_route(state: ProvisioningState) -> None:
    table = plan(db("c1", 10000, "d1", provisioning_state=state), db("c2", 10001, "d2"))
    assert [r.port for r in table.routes] == [10001]


@pytest.mark.parametrize("state", [ProvisioningState.CREATING, ProvisioningState.UPDATING])
def test_busy_databases_keep_their_route(state: ProvisioningState) -> None:
    assert [r.port for r in plan(db("c1", 10000, "d1", provisioning_state=state)).routes] == [10000]


def test_database_without_cluster_or_primary_gets_no_route() -> None:
    assert plan(db("gone", 10000, "d1")).routes == ()
    assert plan(db("c1", 10000, "d1", nodes=())).routes == ()


def test_oss_cluster_exposes_node_ports() -> None:
    d = db("c1", 10000, "d1", clustering_policy=ClusteringPolicy.OSS_CLUSTER)
    table = plan(d)
    assert {(r.port, r.target) for r in table.routes} == {
        (10000, "/run/d1-0-0.sock"),
        (8500, "/run/d1-0-0.sock"),
        (8501, "/run/d1-0-1.sock"),
    }


def test_enterprise_cluster_port_is_a_cluster_route_listing_every_node_and_no_node_ports() -> None:
    nodes = (
        NodeAssignment("d1-1-0", 1, Role.PRIMARY, 8502),
        NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500),
        NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501),
    )
    d = db("c1", 10000, "d1", clustering_policy=ClusteringPolicy.ENTERPRISE_CLUSTER, nodes=nodes)
    (route,) = plan(d).routes
    assert route.port == 10000 and route.mode == "cluster"
    # Authentication still happens against shard 0's primary, which the tracker follows.
    assert route.target == "/run/d1-0-0.sock"
    assert route.candidates == ("/run/d1-0-0.sock", "/run/d1-0-1.sock")
    assert route.nodes == (
        ClusterNode("/run/d1-0-0.sock", 8500, 0),
        ClusterNode("/run/d1-0-1.sock", 8501, 0),
        ClusterNode("/run/d1-1-0.sock", 8502, 1),
    )
    assert parse_route_table(render_route_table(plan(d))) == plan(d)
    (oss,) = [r for r in plan(db("c1", 10000, "d1", clustering_policy=ClusteringPolicy.OSS_CLUSTER)).routes
              if r.port == 10000]  # fmt: skip
    assert oss.mode == "splice" and oss.nodes == ()


def test_a_routes_file_without_mode_parses_as_splice_and_an_unknown_mode_is_refused() -> None:
    text = render_route_table(plan(db("c1", 10000, "d1")))
    assert '"mode"' not in text
    assert parse_route_table(text).routes[0].mode == "splice"
    with pytest.raises(GatewayError, match="unknown mode"):
        parse_route_table(text.replace('"port": 10000,', '"port": 10000, "mode": "teleport",'))


def test_render_parse_round_trip() -> None:
    table = plan(
        db("c1", 10001, "d1", clustering_policy=ClusteringPolicy.OSS_CLUSTER),
        db("c2", 10000, "d2", client_protocol=ClientProtocol.PLAINTEXT),
    )
    text = render_route_table(table)
    parsed = parse_route_table(text)
    assert parsed.cert_file == table.cert_file and parsed.key_file == table.key_file
    assert sorted(parsed.routes, key=lambda r: r.port) == sorted(table.routes, key=lambda r: r.port)
    assert [r.port for r in parsed.routes] == sorted(r.port for r in table.routes)
    assert render_route_table(parsed) == text
    empty = RouteTable((), "c", "k")
    assert parse_route_table(render_route_table(empty)) == empty


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"version": 2, "routes": [], "certFile": "c", "keyFile": "k"}',
        '{"version": 1, "certFile": "c", "keyFile": "k"}',
        '{"version": 1, "routes": [{"port": "x", "tls": true, "target": "t"}], "certFile": "c", "keyFile": "k"}',
        '{"version": 1, "routes": [{"tls": true, "target": "t"}], "certFile": "c", "keyFile": "k"}',
        '{"version": 1, "routes": [], "keyFile": "k"}',
        '{"version": 1, "routes": [{"port": 1, "tls": true, "target": "a"}, {"port": 1, "tls": true, "target": "b"}],'
        ' "certFile": "c", "keyFile": "k"}',
    ],
)
def test_parse_refuses_malformed_files(text: str) -> None:
    with pytest.raises(GatewayError):
        parse_route_table(text)


def test_the_installation_can_cap_the_sku_connection_limit() -> None:
    d = db("c1", 10000, "d1")
    by_key = {CLUSTER.key: CLUSTER}
    (route,) = plan_route_table([d], by_key, "/run", "/c", "/k", connection_cap=100).routes
    assert route.max_connections == 100
    (route,) = plan_route_table([d], by_key, "/run", "/c", "/k", connection_cap=50000).routes
    assert route.max_connections == 15000
