"""Rendering valkey.conf and ACL rules."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from amr.logic.render.valkey_conf import (
    NodeConfigInput,
    password_hash,
    render_client_memory_limits,
    render_default_user_rule,
    render_eviction_policy,
    render_persistence,
    render_valkey_conf,
)
from amr.logic.security.node_credentials import ADMIN_USER, CredentialMasters, derive_password
from amr.model.enums import AofFrequency, ClusteringPolicy, EvictionPolicy, RdbFrequency
from amr.model.node import Role
from amr.model.resources import Persistence

KEYS = ("clear-primary-key-123", "clear-secondary-key-456")
CREDENTIALS = CredentialMasters("admin-master", "ha-master", "gateway-master").for_database("d1")
BASE = NodeConfigInput(
    role=Role.PRIMARY,
    directory="/h/nodes/d1/d1-0-0",
    socket="/h/run/d1-0-0.sock",
    internal_host="127.0.0.2",
    port=8500,
    public_host="cache.example",
    clustering_policy=ClusteringPolicy.OSS_CLUSTER,
    max_memory_bytes=536870912,
    eviction_policy=EvictionPolicy.ALL_KEYS_LFU,
    persistence=Persistence(),
    access_keys_enabled=True,
    access_keys=KEYS,
    credentials=CREDENTIALS,
    primary_port=None,
)


def lines(conf: str) -> list[str]:
    return conf.splitlines()


def user_line(conf: str, user: str) -> list[str]:
    (line,) = [x for x in lines(conf) if x.startswith(f"user {user} ")]
    return line.split()


def test_password_hash_is_acl_sha256() -> None:
    assert password_hash("k") == "#" + hashlib.sha256(b"k").hexdigest()


def test_keys_appear_only_hashed() -> None:
    conf = render_valkey_conf(BASE)
    for key in KEYS:
        assert key not in conf
        assert password_hash(key) in user_line(conf, "default")
    default = user_line(conf, "default")
    assert default[2] == "on" and "reset" not in default
    assert "-config" in default and "+cluster|slots" in default and "-cluster" in default


def test_default_user_off_when_access_keys_disabled() -> None:
    conf = render_valkey_conf(dataclasses.replace(BASE, access_keys_enabled=False))
    default = user_line(conf, "default")
    assert "off" in default and "on" not in default
    assert render_default_user_rule(False, KEYS)[:2] == ["reset", "off"]
    assert render_default_user_rule(True, ("a", ""))[:3] == ["reset", "on", password_hash("a")]
    assert password_hash("") not in render_default_user_rule(True, ("a", ""))


def test_internal_users_are_narrow_and_their_passwords_appear_only_hashed() -> None:
    conf = render_valkey_conf(BASE)
    admin = user_line(conf, ADMIN_USER)
    assert "on" in admin and password_hash(CREDENTIALS.admin) in admin and "+@all" in admin
    replication = user_line(conf, "amr-replication")
    assert replication[2:] == [
        "on", password_hash(CREDENTIALS.replication), "resetchannels", "-@all", "+psync", "+sync", "+replconf", "+ping",
    ]  # fmt: skip
    ha = user_line(conf, "amr-ha")
    assert ha[-5:] == ["+ping", "+info", "+role", "+replicaof", "+cluster|failover"]
    assert "-@all" in ha and not any(w.startswith(("~", "+@")) for w in ha)
    # No password in clear, and no primaryauth at all: a replica gets it on its standard input.
    for secret in (CREDENTIALS.admin, CREDENTIALS.replication, CREDENTIALS.ha, CREDENTIALS.gateway):
        assert secret not in conf
    assert not [line for line in lines(conf) if line.startswith(("primaryauth", "masterauth"))]


def test_passwords_differ_per_database_and_purpose() -> None:
    other = CredentialMasters("admin-master", "ha-master", "gateway-master").for_database("d2")
    mine = (CREDENTIALS.admin, CREDENTIALS.replication, CREDENTIALS.ha, CREDENTIALS.gateway)
    theirs = (other.admin, other.replication, other.ha, other.gateway)
    assert len(set(mine + theirs)) == 8
    assert derive_password("m", "d1", "admin") == derive_password("m", "d1", "admin")
    assert len(CREDENTIALS.admin) >= 43  # 256 bits
    assert "admin-master" not in repr(CREDENTIALS) and CREDENTIALS.admin not in repr(CREDENTIALS)


def test_cluster_lines_only_in_cluster_mode() -> None:
    for policy in (ClusteringPolicy.OSS_CLUSTER, ClusteringPolicy.ENTERPRISE_CLUSTER):
        conf = lines(render_valkey_conf(dataclasses.replace(BASE, clustering_policy=policy)))
        assert "cluster-enabled yes" in conf
        assert "cluster-port 18500" in conf
        assert "cluster-announce-hostname cache.example" in conf
        assert not any(x.startswith("replicaof") for x in conf)
    conf = lines(render_valkey_conf(dataclasses.replace(BASE, clustering_policy=ClusteringPolicy.NO_CLUSTER)))
    assert not any(x.startswith("cluster-") for x in conf)
    assert not any(x.startswith("replicaof") for x in conf)


def test_replicaof_for_a_nocluster_replica() -> None:
    replica = dataclasses.replace(
        BASE, role=Role.REPLICA, clustering_policy=ClusteringPolicy.NO_CLUSTER, primary_port=8501
    )
    assert "replicaof 127.0.0.2 8501" in lines(render_valkey_conf(replica))
    clustered = dataclasses.replace(replica, clustering_policy=ClusteringPolicy.OSS_CLUSTER)
    assert not any(x.startswith("replicaof") for x in lines(render_valkey_conf(clustered)))


def test_basic_lines() -> None:
    conf = lines(render_valkey_conf(BASE))
    for expected in (
        "bind 127.0.0.2",
        "port 8500",
        'unixsocket "/h/run/d1-0-0.sock"',
        'dir "/h/nodes/d1/d1-0-0"',
        "maxmemory 536870912",
        "maxmemory-policy allkeys-lfu",
        "appendonly no",
        'save ""',
    ):
        assert expected in conf


@pytest.mark.parametrize(
    ("persistence", "appendonly", "appendfsync", "save"),
    [
        (Persistence(), "no", "everysec", ""),
        (Persistence(aof_enabled=True, aof_frequency=AofFrequency.ONE_SECOND), "yes", "everysec", ""),
        (Persistence(aof_enabled=True, aof_frequency=AofFrequency.ALWAYS), "yes", "always", ""),
        (Persistence(rdb_enabled=True), "no", "everysec", "3600 1"),
        (Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.SIX_HOURS), "no", "everysec", "21600 1"),
        (Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.TWELVE_HOURS), "no", "everysec", "43200 1"),
    ],
)
def test_persistence(persistence: Persistence, appendonly: str, appendfsync: str, save: str) -> None:
    p = render_persistence(persistence)
    assert (p.appendonly, p.appendfsync, p.save) == (appendonly, appendfsync, save)


def test_every_eviction_policy_renders() -> None:
    rendered = {render_eviction_policy(p) for p in EvictionPolicy}
    assert len(rendered) == len(EvictionPolicy)
    assert render_eviction_policy(EvictionPolicy.NO_EVICTION) == "noeviction"
    assert render_eviction_policy(EvictionPolicy.VOLATILE_TTL) == "volatile-ttl"


def test_gateway_user_may_read_the_topology_and_touch_no_keys() -> None:
    from amr.logic.render.valkey_conf import render_internal_users

    (gateway,) = [u for u in render_internal_users(CREDENTIALS) if u.name == "amr-gateway"]
    rule = list(gateway.rule)
    assert rule[:2] == ["reset", "on"] and CREDENTIALS.gateway not in " ".join(rule)
    assert {"+role", "+ping", "+cluster|slots", "+cluster|shards", "+cluster|myid"} <= set(rule)
    assert "-@all" in rule and "resetchannels" in rule
    assert not any(r.startswith("~") or r.startswith("&") or r.startswith("+@") for r in rule)


def test_a_gateway_user_from_before_the_router_is_observed_as_missing_so_it_is_set_again() -> None:
    import asyncio

    from amr.logic.render.valkey_conf import internal_user_is_current, render_internal_users
    from amr.model.node import NodeSpec, Role
    from amr.reconciler.nodes import observe_node
    from amr.testing.fake_nodes import FakeNodeBackend

    (gateway,) = [u for u in render_internal_users(CREDENTIALS) if u.name == "amr-gateway"]
    spec = NodeSpec(
        "n1",
        "dabc",
        0,
        Role.PRIMARY,
        "/d",
        "/s",
        "127.0.0.2",
        8500,
        f"user amr-gateway {' '.join(gateway.rule[1:])}\n",
    )
    backend = FakeNodeBackend()
    asyncio.run(backend.ensure_node(spec))
    current = asyncio.run(observe_node(backend, spec, cluster_mode=False))
    assert current.internal_users is not None
    seen = current.internal_users["amr-gateway"]
    assert internal_user_is_current(gateway, seen.on, seen.hashes, seen.commands)
    backend.nodes["n1"].internal_users["amr-gateway"] = (set(seen.hashes), "-@all +role +ping")  # older amr
    old = asyncio.run(observe_node(backend, spec, cluster_mode=False))
    assert old.internal_users is not None
    seen = old.internal_users["amr-gateway"]
    assert not internal_user_is_current(gateway, seen.on, seen.hashes, seen.commands)


def test_tenants_may_not_pause_clients_and_an_older_default_user_is_set_again() -> None:
    from amr.logic.render.valkey_conf import default_user_is_current

    rule = render_default_user_rule(True, KEYS)
    assert {"-client|pause", "-client|unpause", "-client|no-evict"} <= set(rule)
    # CLIENT LIST and KILL are the gateway's to run for them (over their own clients only); the rest
    # of CLIENT (SETNAME, ID, INFO, TRACKING ...) stays, as in Azure.
    assert {"-client|list", "-client|kill"} <= set(rule) and "-client" not in rule
    current = " ".join(w for w in rule if w[:1] in "+-")
    assert default_user_is_current(rule, current)
    assert not default_user_is_current(rule, current.replace(" -client|pause", ""))  # an older amr's
    assert not default_user_is_current(rule, current.replace(" -client|kill", ""))
    assert default_user_is_current(rule, None)  # unknown: nothing to decide on


def test_client_buffers_are_bounded_by_the_nodes_memory() -> None:
    limits = dict(render_client_memory_limits(512 * 1024**2))
    # All clients' buffers together: half the node's memory; one client's output: the same hard
    # limit (a reply that big can still be read), and an eighth for a minute.
    assert limits["maxmemory-clients"] == str(256 * 1024**2)
    normal = limits["client-output-buffer-limit"].split()
    assert normal[:4] == ["normal", str(256 * 1024**2), str(64 * 1024**2), "60"]
    # Replica and pub/sub limits stay the engine's defaults, spelled as CONFIG GET prints them.
    assert normal[4:] == ["slave", "268435456", "67108864", "60", "pubsub", "33554432", "8388608", "60"]
    bigger = dict(render_client_memory_limits(4 * 1024**3))
    assert bigger["maxmemory-clients"] == str(2 * 1024**3)


def test_client_memory_limits_follow_maxmemory_in_the_file() -> None:
    conf = render_valkey_conf(BASE).splitlines()
    at = conf.index("maxmemory-policy allkeys-lfu")
    limits = render_client_memory_limits(BASE.max_memory_bytes)
    assert conf[at + 1 : at + 3] == [f"{name} {value}" for name, value in limits]
    # Never unlimited (the engine's default for normal clients is 0 0 0).
    assert "normal 0 0 0" not in "\n".join(conf)


@pytest.mark.parametrize(
    "subcommand, granted",
    [
        # Read-only, about the caller or the command table: what client libraries ask for.
        ("acl|whoami", True), ("acl|cat", True), ("acl|genpass", True), ("acl|help", True),
        ("module|list", True), ("module|help", True),
        # amr's users, their password hashes and permissions, their failed logins: kept.
        ("acl|list", False), ("acl|users", False), ("acl|getuser", False), ("acl|dryrun", False),
        ("acl|log", False),
        # Changes: kept.
        ("acl|setuser", False), ("acl|deluser", False), ("acl|save", False), ("acl|load", False),
        ("module|load", False), ("module|loadex", False), ("module|unload", False),
    ],
)  # fmt: skip
def test_tenants_get_read_only_introspection_and_nothing_else_of_acl_and_module(
    subcommand: str, granted: bool
) -> None:
    rule = render_default_user_rule(True, KEYS)
    parent = subcommand.split("|")[0]
    # The whole command is denied first, then the granted subcommands are added back after it.
    assert f"-{parent}" in rule
    assert (f"+{subcommand}" in rule) is granted
    if granted:
        assert rule.index(f"+{subcommand}") > rule.index(f"-{parent}")


def test_a_default_user_without_the_granted_introspection_is_set_again() -> None:
    from amr.logic.render.valkey_conf import default_user_is_current

    rule = render_default_user_rule(True, KEYS)
    current = " ".join(w for w in rule if w[:1] in "+-")
    assert default_user_is_current(rule, current)
    assert not default_user_is_current(rule, current.replace(" +acl|whoami", ""))  # an older amr's


def test_the_rendered_config_of_a_clustered_node_announces_no_internal_address_to_clients() -> None:
    from amr.logic.render.announce import ClientAnnouncement

    conf = render_valkey_conf(
        dataclasses.replace(
            BASE, public_host="localhost", client_announcement=ClientAnnouncement("127.0.0.1", "ip")
        )
    ).splitlines()
    # The bus and replication keep the internal address; clients are told the public one.
    assert "cluster-announce-ip 127.0.0.2" in conf
    assert "cluster-announce-client-ipv4 127.0.0.1" in conf
    assert "cluster-preferred-endpoint-type ip" in conf
    assert "cluster-announce-hostname localhost" in conf
