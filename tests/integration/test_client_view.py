"""What client libraries see of a database, through the real TLS endpoints: an OSSCluster's topology
names every node by its public address and per-node port, in CLUSTER SLOTS, SHARDS and NODES and in
redirects alike (redis-py's node names match CLUSTER NODES), and never the nodes' internal address;
the read-only introspection clients ask for (ACL WHOAMI, MODULE LIST ...) answers on every clustering
policy, while amr's own users stay hidden (ACL LIST, USERS, GETUSER ... answer NOPERM)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.integration.amr_service import AmrService, create_cache, running_service, wait_until
from tests.integration.ha_load import admin_client, routes_of

INTERNAL_HOST = "127.0.0.2"  # engine.internal_host's default
PUBLIC_ADDRESS = "127.0.0.1"  # what gateway.public_host "localhost" is announced as


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service()


@pytest.fixture(scope="module")
def caches(service: AmrService) -> Iterator[dict[str, redis.Redis]]:
    """One database per clustering policy: a 2-shard OSSCluster with replicas, a 2-shard
    EnterpriseCluster and a NoCluster one."""
    clients = {
        "OSSCluster": create_cache(service, "oss", "Balanced_B3", "OSSCluster", ha="Enabled"),
        "EnterpriseCluster": create_cache(service, "ent", "Balanced_B3", "EnterpriseCluster"),
        "NoCluster": create_cache(service, "solo", "Balanced_B0", "NoCluster"),
    }
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def cluster(service: AmrService, caches: dict[str, redis.Redis]) -> Iterator[RedisCluster]:
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "oss", "-g", "rg")
    rc = RedisCluster(
        host="localhost", port=db["properties"]["port"], password=service.primary_key("oss"), ssl=True,
        ssl_ca_certs=service.ca_file, decode_responses=True,
    )  # fmt: skip
    # Every node, replicas included, once each shard's replica has joined.
    wait_until(lambda: len(rc.get_nodes()) == 4 or rc.nodes_manager.initialize(), 30, what="4 nodes")
    yield rc
    rc.close()


def _raw(service: AmrService, port: int, *command: str) -> Any:
    """``command``'s reply as the engine sent it (no redis-py parsing), through a public port."""
    r = redis.Redis(
        host="localhost", port=port, password=service.primary_key("oss"), ssl=True,
        ssl_ca_certs=service.ca_file, decode_responses=True,
    )  # fmt: skip
    r.set_response_callback(" ".join(command[:2]).upper(), lambda reply, **_: reply)
    try:
        return r.execute_command(*command)
    finally:
        r.close()


def _pairs(reply: Any) -> dict[str, Any]:
    """A map reply as a dict, whether it came as a RESP3 map or a RESP2 flat list."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))


def _each_node(service: AmrService, rc: RedisCluster, *command: str) -> dict[str, Any]:
    """``command``'s raw reply from every node, through its own public port."""
    return {node.name: _raw(service, node.port, *command) for node in rc.get_nodes()}


def test_cluster_clients_see_one_public_name_per_node_everywhere(
    service: AmrService, cluster: RedisCluster
) -> None:
    names = {node.name for node in cluster.get_nodes()}
    assert {name.rsplit(":", 1)[0] for name in names} == {PUBLIC_ADDRESS}
    for node in cluster.get_nodes():
        # redis-py reads CLUSTER NODES by "ip:port": the names CLUSTER SLOTS gave it.
        nodes = cluster.execute_command("CLUSTER NODES", target_nodes=node)
        assert set(nodes) == names, node.name
        assert "myself" in nodes[node.name]["flags"]
        assert {n["hostname"] for n in nodes.values()} == {"localhost"}
    # As redis-py's own test_default_node_is_replaced_after_exception asks.
    default = cluster.get_default_node()
    assert "myself" in cluster.cluster_nodes()[default.name]["flags"]
    for node_name, shards in _each_node(service, cluster, "CLUSTER", "SHARDS").items():
        members = [_pairs(n) for shard in shards for n in _pairs(shard)["nodes"]]
        assert {f"{m['endpoint']}:{m['port']}" for m in members} == names, node_name
        assert {m["ip"] for m in members} == {PUBLIC_ADDRESS}


def test_no_cluster_reply_shows_an_internal_address(service: AmrService, cluster: RedisCluster) -> None:
    for command in ("NODES", "SHARDS", "SLOTS", "INFO", "MYID", "MYSHARDID", "LINKS"):
        for node_name, reply in _each_node(service, cluster, "CLUSTER", command).items():
            assert INTERNAL_HOST not in repr(reply), (command, node_name)


def test_the_bus_port_shown_beside_the_public_address_leads_nowhere(
    service: AmrService, cluster: RedisCluster
) -> None:
    for node_name, text in _each_node(service, cluster, "CLUSTER", "NODES").items():
        line = next(x for x in text.splitlines() if "myself" in x)
        address, bus = line.split()[1].split(",")[0].split("@")
        assert address == node_name
        with pytest.raises(OSError):
            socket.create_connection((PUBLIC_ADDRESS, int(bus)), timeout=1).close()


def test_a_redirect_names_the_public_address(service: AmrService, cluster: RedisCluster) -> None:
    key = "redirected"
    owner = cluster.get_node_from_key(key)
    other = next(n for n in cluster.get_primaries() if n.name != owner.name)
    direct = redis.Redis(
        host="localhost", port=other.port, password=service.primary_key("oss"), ssl=True,
        ssl_ca_certs=service.ca_file,
    )  # fmt: skip
    try:
        with pytest.raises(redis.exceptions.MovedError) as e:
            direct.execute_command("GET", key)
    finally:
        direct.close()
    assert str(e.value) == f"{cluster.keyslot(key)} {owner.name}"  # MOVED <slot> <host:port>


def test_nodes_set_up_before_are_given_the_public_address_live(
    service: AmrService, cluster: RedisCluster
) -> None:
    # A node still announcing the way an older amr set it up (its internal address, the host name
    # in CLUSTER SLOTS) is put right by the control plane's next passes, without a restart.
    node: ClusterNode = cluster.get_default_node()
    admin = admin_client(service.home, routes_of(service.home, node.port)["target"])
    try:
        admin.config_set("cluster-announce-client-ipv4", "")
        admin.config_set("cluster-preferred-endpoint-type", "hostname")
        wait_until(
            lambda: (
                admin.config_get("cluster-preferred-endpoint-type")["cluster-preferred-endpoint-type"] == "ip"
                and admin.config_get("cluster-announce-client-ipv4")["cluster-announce-client-ipv4"]
                == PUBLIC_ADDRESS
            ),
            30,
            what="the node announces the public address again",
        )
    finally:
        admin.close()
    assert INTERNAL_HOST not in _raw(service, node.port, "CLUSTER", "NODES")


INTROSPECTION = [
    ("ACL", "WHOAMI"),
    ("ACL", "CAT"),
    ("ACL", "CAT", "read"),
    ("ACL", "GENPASS"),
    ("MODULE", "LIST"),
]
KEPT = [
    ("ACL", "LIST"),
    ("ACL", "USERS"),
    ("ACL", "GETUSER", "default"),
    ("ACL", "GETUSER", "amr-admin"),
    ("ACL", "DRYRUN", "amr-admin", "GET", "k"),
    ("ACL", "LOG"),
    ("ACL", "LOG", "RESET"),
    ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all"),
    ("ACL", "DELUSER", "amr-gateway"),
]
# Refused by the engine before its ACL looks (enable-module-command is off), and by the ACL too.
MODULE_CHANGES = [
    ("MODULE", "LOAD", "/tmp/x.so"),
    ("MODULE", "LOADEX", "/tmp/x.so"),
    ("MODULE", "UNLOAD", "x"),
]


@pytest.mark.parametrize("policy", ["OSSCluster", "EnterpriseCluster", "NoCluster"])
def test_read_only_introspection_answers_and_amrs_users_stay_hidden(
    service: AmrService, caches: dict[str, redis.Redis], policy: str
) -> None:
    r = caches[policy]
    # What client libraries ask for, with redis-py's own methods.
    assert r.acl_whoami() == "default"
    assert "keyspace" in r.acl_cat() and "get" in r.acl_cat("read")
    assert len(r.acl_genpass()) == 64
    assert r.module_list() == []
    for command in INTROSPECTION:
        r.execute_command(*command)
    for command in KEPT:
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.execute_command(*command)
    for command in MODULE_CHANGES:
        with pytest.raises(redis.exceptions.ResponseError, match="NOPERM|not allowed"):
            r.execute_command(*command)
    # The refused commands changed nothing: amr's users are all there, and no other.
    port = r.connection_pool.connection_kwargs["port"]
    admin = admin_client(service.home, routes_of(service.home, port)["target"])
    try:
        assert sorted(admin.acl_users()) == [
            "amr-admin",
            "amr-gateway",
            "amr-ha",
            "amr-monitor",
            "amr-replication",
            "default",
        ]
    finally:
        admin.close()
