"""Failover foundation: the gateway's choice of primary and a control plane that accepts role changes."""

from __future__ import annotations

import dataclasses

import pytest

from amr.logic.dataplane.primary import RoleAnswer, choose_primary, parse_role_reply
from amr.logic.keyspace.slots import plan_slot_ranges
from amr.logic.operations.node_actions import (
    AddSlots,
    ClusterMeet,
    ClusterReplicate,
    SetInternalUser,
    WaitCluster,
    WriteConfig,
)
from amr.logic.operations.node_state import ObservedUser
from amr.logic.operations.plan import choose_shard_primaries, plan_database_actions, plan_node_targets
from amr.logic.render.valkey_conf import password_hash
from amr.logic.topology.placement import plan_nodes
from amr.model.node import Role
from tests.unit.logic.operations.failover_fixtures import (
    CLUSTER,
    CREDENTIALS,
    ENV,
    KEYS,
    NOC,
    OSS,
    database,
    seen,
    switched_cluster,
)

# -- the gateway's choice -------------------------------------------------------------------------

A, B, C = "/run/a.sock", "/run/b.sock", "/run/c.sock"
MASTER = RoleAnswer("master", 1)
LONE_MASTER = RoleAnswer("master", 0)
SLAVE = RoleAnswer("slave")


@pytest.mark.parametrize(
    ("answers", "current", "chosen"),
    [
        ({A: MASTER, B: SLAVE}, A, A),
        ({A: SLAVE, B: MASTER}, A, B),  # a switchover
        ({A: None, B: LONE_MASTER}, A, B),  # the primary is gone, its replica promoted
        ({A: None, B: None}, A, A),  # nobody answers: keep the current choice
        ({A: SLAVE, B: SLAVE}, B, B),  # failover in progress: keep it
        ({A: MASTER, B: LONE_MASTER}, A, A),  # promoted, old primary not told yet: the one with replicas
        ({A: LONE_MASTER, B: MASTER}, A, B),
        ({A: LONE_MASTER, B: LONE_MASTER}, B, B),  # two equal masters: never flap
        ({A: MASTER, B: MASTER, C: SLAVE}, B, B),
        ({A: LONE_MASTER, B: LONE_MASTER}, C, A),  # current is no master: the first candidate
        ({B: MASTER}, A, B),  # A never answered yet
    ],
)
def test_choose_primary(answers: dict[str, RoleAnswer | None], current: str, chosen: str) -> None:
    assert choose_primary((A, B, C), answers, current) == chosen


def test_parse_role_reply() -> None:
    assert parse_role_reply([b"master", 10, [[b"127.0.0.1", b"8501", b"10"]]]) == RoleAnswer("master", 1)
    assert parse_role_reply(["master", 0, []]) == RoleAnswer("master", 0)
    assert parse_role_reply([b"slave", b"127.0.0.1", 8500, b"connected", 10]) == RoleAnswer("slave")
    assert parse_role_reply("OK") is None
    assert parse_role_reply([]) is None


# -- the control plane accepts what the nodes say ------------------------------------------------


def test_cluster_switchover_is_accepted_not_undone() -> None:
    db = database(OSS)
    observed = switched_cluster(db)
    primaries = choose_shard_primaries(db, observed, cluster_mode=True)
    assert primaries == {0: "d1-0-1"}
    targets = plan_node_targets(db, CLUSTER, ENV, primaries)
    assert {t.spec.name: t.spec.role for t in targets} == {"d1-0-0": Role.REPLICA, "d1-0-1": Role.PRIMARY}
    assert plan_database_actions(OSS, targets, observed, KEYS, CREDENTIALS.replication) == []


def test_cluster_old_primary_back_empty_replicates_the_new_one() -> None:
    db = database(OSS)
    observed = switched_cluster(db)
    observed["d1-0-0"] = dataclasses.replace(observed["d1-0-0"], cluster_primary_id=None, role="master")
    primaries = choose_shard_primaries(db, observed, cluster_mode=True)
    assert primaries == {0: "d1-0-1"}
    targets = plan_node_targets(db, CLUSTER, ENV, primaries)
    old = next(t for t in targets if t.spec.name == "d1-0-0")
    assert plan_database_actions(OSS, targets, observed, KEYS, CREDENTIALS.replication) == [
        ClusterReplicate(old.spec, "R")
    ]


def test_cluster_without_slots_gets_them_on_the_initial_primary() -> None:
    db = database(OSS)
    observed = switched_cluster(db)
    for name in observed:
        observed[name] = dataclasses.replace(
            observed[name], cluster_slots_assigned=0, cluster_slot_ranges=(), cluster_primary_id=None
        )
    primaries = choose_shard_primaries(db, observed, cluster_mode=True)
    assert primaries == {0: "d1-0-0"}
    targets = plan_node_targets(db, CLUSTER, ENV, primaries)
    actions = plan_database_actions(OSS, targets, observed, KEYS, CREDENTIALS.replication)
    assert [a for a in actions if isinstance(a, AddSlots)] == [AddSlots(targets[0].spec, 0, 16383)]


def test_no_cluster_replicaof_follows_the_observed_primary() -> None:
    db = database(NOC)
    before = plan_node_targets(db, CLUSTER, ENV)
    assert "replicaof 127.0.0.2 8500" in before[1].spec.config
    assert "\nreplicaof " not in before[0].spec.config
    observed = {
        "d1-0-0": seen(before[0], role="slave"),
        "d1-0-1": seen(before[1], role="master"),
    }
    primaries = choose_shard_primaries(db, observed, cluster_mode=False)
    assert primaries == {0: "d1-0-1"}
    after = plan_node_targets(db, CLUSTER, ENV, primaries)
    assert "replicaof 127.0.0.2 8501" in after[0].spec.config
    assert "\nreplicaof " not in after[1].spec.config
    # The files on disk still say the old topology: each is rewritten once (nothing restarts).
    actions = plan_database_actions(NOC, after, observed, KEYS, CREDENTIALS.replication)
    assert actions == [WriteConfig(after[0].spec), WriteConfig(after[1].spec)]
    written = {
        n: dataclasses.replace(o, config_file=t.spec.config)
        for (n, o), t in zip(observed.items(), after, strict=True)
    }
    assert plan_database_actions(NOC, after, written, KEYS, CREDENTIALS.replication) == []


@pytest.mark.parametrize("roles", [("master", "master"), ("slave", "slave"), (None, None)])
def test_unclear_roles_keep_the_store_primary(roles: tuple[str | None, str | None]) -> None:
    db = database(NOC)
    targets = plan_node_targets(db, CLUSTER, ENV)
    observed = {t.spec.name: seen(t, role=r) for t, r in zip(targets, roles, strict=True)}
    assert choose_shard_primaries(db, observed, cluster_mode=False) == {0: "d1-0-0"}


def test_internal_users_are_added_live_with_the_config_file() -> None:
    db = database(NOC)
    targets = plan_node_targets(db, CLUSTER, ENV)
    assert "user amr-gateway on #" in targets[0].spec.config
    assert "-@all +role +ping" in targets[0].spec.config
    assert "user amr-replication on #" in targets[0].spec.config
    # A node that has neither (one an older amr started): both set again, live.
    without = {
        t.spec.name: seen(
            t, config_file="old", internal_users={"amr-admin": seen(t).internal_users["amr-admin"]}
        )  # type: ignore[index]
        for t in targets
    }
    actions = plan_database_actions(NOC, targets, without, KEYS, CREDENTIALS.replication)
    assert [type(a) for a in actions] == [WriteConfig, SetInternalUser, SetInternalUser, SetInternalUser] * 2
    users = {a.user: a for a in actions if isinstance(a, SetInternalUser)}
    assert users["amr-gateway"].rule == (
        "reset", "on", password_hash(CREDENTIALS.gateway), "resetchannels", "-@all", "+role", "+ping",
        "+cluster|slots", "+cluster|shards", "+cluster|myid", "+command|info", "+client|list",
        "+client|kill",
    )  # fmt: skip
    assert users["amr-ha"].rule[-5:] == ("+ping", "+info", "+role", "+replicaof", "+cluster|failover")
    # The replication user comes with the credentials replicas log in with; no one else's does.
    assert users["amr-replication"].replication_auth == CREDENTIALS.replication
    assert users["amr-gateway"].replication_auth == ""
    assert CREDENTIALS.replication not in repr(users["amr-replication"])
    # A user from an older version with fewer commands, or another password, is set again too.
    stale = ObservedUser(True, frozenset({password_hash(CREDENTIALS.gateway)[1:]}), "-@all +role +ping")
    old_gateway = {
        t.spec.name: seen(t, internal_users={**seen(t).internal_users, "amr-gateway": stale}) for t in targets
    }  # type: ignore[arg-type]
    assert [
        a.user
        for a in plan_database_actions(NOC, targets, old_gateway, KEYS)
        if isinstance(a, SetInternalUser)
    ] == ["amr-gateway"] * 2
    assert plan_database_actions(NOC, targets, {t.spec.name: seen(t) for t in targets}, KEYS) == []


def test_without_a_gateway_master_no_gateway_user_is_rendered() -> None:
    env = dataclasses.replace(ENV, credentials=dataclasses.replace(CREDENTIALS, gateway=""))
    (target, _) = plan_node_targets(database(NOC), CLUSTER, env)
    assert "amr-gateway" not in target.spec.config
    assert "primaryauth" not in target.spec.config and CREDENTIALS.replication not in target.spec.config


def test_slot_ranges_cover_every_slot_once_and_evenly() -> None:
    assert plan_slot_ranges(1) == [(0, 16383)]
    assert plan_slot_ranges(4) == [(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]
    three = plan_slot_ranges(3)
    assert three == [(0, 5461), (5462, 10922), (10923, 16383)]
    for shards in (2, 3, 5, 6, 7):
        ranges = plan_slot_ranges(shards)
        sizes = [last - first + 1 for first, last in ranges]
        assert sum(sizes) == 16384 and max(sizes) - min(sizes) <= 1
        assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))


def test_a_two_shard_database_meets_its_primaries_and_gives_each_shard_its_slots() -> None:
    db = dataclasses.replace(database(OSS), nodes=plan_nodes("d1", 2, True, (), [8500, 8501, 8502, 8503]))
    targets = plan_node_targets(db, CLUSTER, ENV)
    by_name = {t.spec.name: t for t in targets}
    ids = {t.spec.name: f"id-{t.spec.name}" for t in targets}
    observed = {
        t.spec.name: seen(t, cluster_id=ids[t.spec.name], cluster_known_ids=frozenset({ids[t.spec.name]}))
        for t in targets
    }
    actions = plan_database_actions(OSS, targets, observed, KEYS, CREDENTIALS.replication)
    p0, p1 = by_name["d1-0-0"].spec, by_name["d1-1-0"].spec
    assert ClusterMeet(p1, p0.internal_host, p0.port) in actions
    assert AddSlots(p0, 0, 8191) in actions and AddSlots(p1, 8192, 16383) in actions
    # Each replica meets its own shard's primary.
    assert ClusterMeet(by_name["d1-1-1"].spec, p1.internal_host, p1.port) in actions


def test_a_shard_added_by_a_scale_out_gets_no_slots_by_addslots() -> None:
    """Shard 0 owns every slot: the new shard 1 waits for the migration, it never claims its range."""
    db = dataclasses.replace(database(OSS), nodes=plan_nodes("d1", 2, False, (), [8500, 8501]))
    targets = plan_node_targets(db, CLUSTER, ENV)
    ids = {t.spec.name: f"id-{t.spec.name}" for t in targets}
    observed = {
        t.spec.name: seen(
            t, cluster_id=ids[t.spec.name], cluster_known_ids=frozenset(ids.values()), cluster_state_ok=True
        )
        for t in targets
    }
    observed["d1-0-0"] = dataclasses.replace(
        observed["d1-0-0"], cluster_slots_assigned=16384, cluster_slot_ranges=((0, 16383),)
    )
    assert [a for a in plan_database_actions(OSS, targets, observed, KEYS) if isinstance(a, AddSlots)] == []
    # Half the slots lost (a shard deleted by hand): only the unowned half is given out.
    observed["d1-0-0"] = dataclasses.replace(
        observed["d1-0-0"], cluster_slots_assigned=8192, cluster_slot_ranges=((0, 8191),)
    )
    p1 = next(t.spec for t in targets if t.spec.name == "d1-1-0")
    actions = plan_database_actions(OSS, targets, observed, KEYS)
    assert [a for a in actions if isinstance(a, AddSlots)] == [AddSlots(p1, 8192, 16383)]


def test_a_cluster_is_settled_only_once_its_primary_sees_every_slots_owner() -> None:
    """With cluster-require-full-coverage off, a primary says ``cluster_state:ok`` before gossip has
    told it who owns every slot; its CLUSTER SLOTS would leave slots out for a cluster client."""
    db = database(OSS)
    observed = switched_cluster(db)
    targets = plan_node_targets(db, CLUSTER, ENV, {0: "d1-0-1"})
    partial = {**observed, "d1-0-1": dataclasses.replace(observed["d1-0-1"], cluster_slots_seen=12288)}
    (wait,) = plan_database_actions(OSS, targets, partial, KEYS)
    assert isinstance(wait, WaitCluster) and wait.spec.name == "d1-0-1"
    full = {**observed, "d1-0-1": dataclasses.replace(observed["d1-0-1"], cluster_slots_seen=16384)}
    assert plan_database_actions(OSS, targets, full, KEYS) == []
