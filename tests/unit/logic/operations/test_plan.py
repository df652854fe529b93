"""Planning a database's node actions from desired targets and an observed snapshot."""

from __future__ import annotations

import dataclasses

import pytest

from amr.logic.operations.node_actions import (
    AddSlots,
    ClusterMeet,
    ClusterReplicate,
    ConfigSet,
    EnsureNode,
    SetDefaultUser,
    WaitCluster,
    WaitReady,
    WriteConfig,
    describe_actions,
)
from amr.logic.operations.plan import plan_database_actions, plan_node_targets
from amr.logic.render.announce import ClientAnnouncement
from amr.logic.render.valkey_conf import password_hash
from amr.model.enums import AofFrequency, ClusteringPolicy, EvictionPolicy, RdbFrequency, Toggle
from amr.model.node import ProcessState, Role
from amr.model.resources import Persistence
from tests.unit.logic.operations.plan_fixtures import CLUSTER, ENV, KEYS, database, in_sync, synced_cluster


def test_targets_describe_every_node() -> None:
    targets = plan_node_targets(database(), CLUSTER, ENV)
    assert [t.spec.name for t in targets] == ["d1-0-0", "d1-0-1"]
    primary, replica = targets
    assert primary.spec.directory == "/h/nodes/d1/d1-0-0"
    assert primary.spec.socket == "/h/run/d1-0-0.sock"
    assert ("maxmemory-policy", "volatile-lru") in primary.live_config
    assert primary.default_user_on
    assert primary.default_user_hashes == {password_hash(k)[1:] for k in KEYS}
    assert "primary-key" not in primary.spec.config
    assert replica.spec.role is Role.REPLICA


def test_values_are_compressed_and_notices_logged_but_not_while_slots_move() -> None:
    settled = plan_node_targets(database(), CLUSTER, ENV)[0]
    moving = plan_node_targets(database(), CLUSTER, dataclasses.replace(ENV, moving_slots=True))[0]
    assert ("rdbcompression", "yes") in settled.live_config
    assert "\nrdbcompression yes\n" in settled.spec.config
    assert ("rdbcompression", "no") in moving.live_config
    assert "\nrdbcompression no\n" in moving.spec.config
    assert ("loglevel", "notice") in settled.live_config
    assert ("loglevel", "warning") in moving.live_config
    # A node still compressing while slots move gets it switched off live, and back on after.
    observed = {t.spec.name: in_sync(t) for t in plan_node_targets(database(), CLUSTER, ENV)}
    moving_targets = plan_node_targets(database(), CLUSTER, dataclasses.replace(ENV, moving_slots=True))
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, moving_targets, observed, KEYS)
    assert {(a.parameter, a.value) for a in actions if isinstance(a, ConfigSet)} == {
        ("rdbcompression", "no"),
        ("loglevel", "warning"),
    }


def test_client_memory_limits_are_set_live_on_a_node_that_lacks_them() -> None:
    # A node started before the limits existed has the engine's defaults: they are CONFIG SET
    # live (no restart), with the values its valkey.conf now has.
    targets = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in targets}
    for seen in observed.values():
        seen.config["maxmemory-clients"] = "0"
        seen.config["client-output-buffer-limit"] = (
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        )
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    sets = [(a.spec.name, a.parameter, a.value) for a in actions if isinstance(a, ConfigSet)]
    half = str(256 * 1024**2)
    limit = f"normal {half} {64 * 1024**2} 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    assert sets == [
        (t.spec.name, name, value)
        for t in targets
        for name, value in (("client-output-buffer-limit", limit), ("maxmemory-clients", half))
    ]
    assert all(f"maxmemory-clients {half}" in t.spec.config for t in targets)


def test_clustered_nodes_of_an_older_amr_announce_the_public_address_live() -> None:
    # Nodes that still tell clients their internal address (started before amr announced the public
    # one) get it CONFIG SET live; a NoCluster database's nodes have no cluster to announce.
    env = dataclasses.replace(ENV, client_announcement=ClientAnnouncement("127.0.0.1", "ip"))
    targets = plan_node_targets(database(), CLUSTER, env)
    observed = synced_cluster(targets)
    for seen in observed.values():
        seen.config["cluster-announce-client-ipv4"] = ""
        seen.config["cluster-preferred-endpoint-type"] = "hostname"
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    sets = [(a.spec.name, a.parameter, a.value) for a in actions if isinstance(a, ConfigSet)]
    assert sets == [
        (t.spec.name, name, value)
        for t in targets
        for name, value in (
            ("cluster-announce-client-ipv4", "127.0.0.1"),
            ("cluster-preferred-endpoint-type", "ip"),
        )
    ]
    assert all("cluster-announce-client-ipv4 127.0.0.1" in t.spec.config for t in targets)
    nocluster = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, env)
    assert not any(name.startswith("cluster-") for t in nocluster for name, _ in t.live_config)


def test_a_setting_the_engine_does_not_have_is_not_set() -> None:
    # An engine without cluster-announce-client-ipv4 does not report it: nothing to set (and no
    # error from CONFIG SET on every pass).
    env = dataclasses.replace(ENV, client_announcement=ClientAnnouncement("127.0.0.1", "ip"))
    targets = plan_node_targets(database(), CLUSTER, env)
    observed = synced_cluster(targets)
    for seen in observed.values():
        del seen.config["cluster-announce-client-ipv4"]
    assert plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS) == []


def test_nodes_not_ready_come_first_and_alone() -> None:
    targets = plan_node_targets(database(), CLUSTER, ENV)
    primary, replica = targets
    # The replica is missing and the primary's config drifted: only start/wait actions are planned.
    observed = {primary.spec.name: in_sync(primary, config={})}
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    assert actions == [EnsureNode(replica.spec), WaitReady(replica.spec)]
    observed[replica.spec.name] = in_sync(replica, ready=False, process=ProcessState.STARTING)
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    assert actions == [EnsureNode(replica.spec), WaitReady(replica.spec)]
    assert plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, {}, KEYS) == [
        EnsureNode(primary.spec), WaitReady(primary.spec), EnsureNode(replica.spec), WaitReady(replica.spec),
    ]  # fmt: skip


def test_in_sync_plans_nothing() -> None:
    targets = plan_node_targets(database(), CLUSTER, ENV)
    assert plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, synced_cluster(targets), KEYS) == []
    assert describe_actions([]) == "in sync"
    nocluster = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in nocluster}
    assert plan_database_actions(ClusteringPolicy.NO_CLUSTER, nocluster, observed, KEYS) == []


def test_config_drift_is_corrected_with_config_set() -> None:
    db = database(ClusteringPolicy.NO_CLUSTER, eviction_policy=EvictionPolicy.ALL_KEYS_LRU)
    targets = plan_node_targets(db, CLUSTER, ENV)
    primary, replica = targets
    observed = {t.spec.name: in_sync(t) for t in targets}
    observed[primary.spec.name].config["maxmemory-policy"] = "volatile-lru"
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    assert actions == [WriteConfig(primary.spec), ConfigSet(primary.spec, "maxmemory-policy", "allkeys-lru")]
    assert describe_actions(actions) == "WriteConfig(d1-0-0), ConfigSet(d1-0-0)"


def test_access_key_change_sets_default_user_without_disconnecting() -> None:
    old = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    new_keys = ("new-primary", "secondary-key")
    db = database(ClusteringPolicy.NO_CLUSTER, primary_key="new-primary")
    targets = plan_node_targets(db, CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in old}
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, new_keys)
    assert [type(a) for a in actions] == [WriteConfig, SetDefaultUser, WriteConfig, SetDefaultUser]
    action = actions[1]
    assert isinstance(action, SetDefaultUser)
    assert not action.disconnect_clients
    assert "on" in action.rule and password_hash("new-primary") in action.rule
    assert password_hash("primary-key") not in action.rule
    assert "new-primary" not in action.rule  # only hashes


def test_disabling_access_keys_disconnects_clients() -> None:
    old = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    db = database(ClusteringPolicy.NO_CLUSTER, access_keys_authentication=Toggle.DISABLED)
    targets = plan_node_targets(db, CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in old}
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    assert [type(a) for a in actions] == [WriteConfig, SetDefaultUser, WriteConfig, SetDefaultUser]
    for action in actions[1::2]:
        assert isinstance(action, SetDefaultUser)
        assert action.disconnect_clients and "off" in action.rule and "on" not in action.rule


def test_cluster_mode_empty_primary_gets_all_slots() -> None:
    targets = plan_node_targets(database(), CLUSTER, ENV)
    primary, _ = targets
    observed = synced_cluster(targets)
    observed[primary.spec.name] = dataclasses.replace(
        observed[primary.spec.name], cluster_slots_assigned=0, cluster_slot_ranges=(), cluster_state_ok=False
    )
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    assert actions == [AddSlots(primary.spec, 0, 16383)]
    observed[primary.spec.name] = dataclasses.replace(
        observed[primary.spec.name], cluster_slots_assigned=16384, cluster_slot_ranges=((0, 16383),)
    )
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    assert [type(a) for a in actions] == [WaitCluster]


def test_converted_primary_gets_the_slots_its_keys_did_not_claim() -> None:
    # A NoCluster primary restarted in cluster mode claims the slots of the keys it loaded.
    targets = plan_node_targets(database(), CLUSTER, ENV)
    primary, _ = targets
    observed = synced_cluster(targets)
    observed[primary.spec.name] = dataclasses.replace(
        observed[primary.spec.name],
        cluster_slots_assigned=102,
        cluster_slot_ranges=((5, 5), (100, 200)),
        cluster_state_ok=False,
    )
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS)
    assert actions == [AddSlots(primary.spec, 0, 4, ((6, 99), (201, 16383)))]


def test_cluster_mode_replica_meets_then_replicates() -> None:
    targets = plan_node_targets(database(ClusteringPolicy.ENTERPRISE_CLUSTER), CLUSTER, ENV)
    primary, replica = targets
    observed = synced_cluster(targets)
    fresh = dataclasses.replace(
        observed[replica.spec.name], cluster_known_ids=frozenset({"R"}), cluster_primary_id=None
    )
    observed[replica.spec.name] = fresh
    actions = plan_database_actions(ClusteringPolicy.ENTERPRISE_CLUSTER, targets, observed, KEYS)
    assert actions == [ClusterMeet(replica.spec, "127.0.0.2", primary.spec.port)]
    # After the meet the replica knows the primary but does not follow it yet.
    observed[replica.spec.name] = dataclasses.replace(fresh, cluster_known_ids=frozenset({"P", "R"}))
    actions = plan_database_actions(ClusteringPolicy.ENTERPRISE_CLUSTER, targets, observed, KEYS)
    assert actions == [ClusterReplicate(replica.spec, "P")]


def test_cluster_mode_waits_for_primary_id() -> None:
    targets = plan_node_targets(database(), CLUSTER, ENV)
    primary, replica = targets
    observed = synced_cluster(targets)
    observed[primary.spec.name] = dataclasses.replace(observed[primary.spec.name], cluster_id=None)
    observed[replica.spec.name] = dataclasses.replace(observed[replica.spec.name], cluster_primary_id=None)
    assert plan_database_actions(ClusteringPolicy.OSS_CLUSTER, targets, observed, KEYS) == []


def test_no_cluster_mode_plans_no_topology() -> None:
    targets = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in targets}  # no slots, no cluster ids
    assert plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS) == []


AOF_1S = Persistence(aof_enabled=True, aof_frequency=AofFrequency.ONE_SECOND)
AOF_ALWAYS = Persistence(aof_enabled=True, aof_frequency=AofFrequency.ALWAYS)
RDB_6H = Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.SIX_HOURS)
NONE = Persistence()


def _switch(old: Persistence, new: Persistence) -> list[list[object]]:
    """The actions of each node when the database's persistence goes from ``old`` to ``new``."""
    before = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER, persistence=old), CLUSTER, ENV)
    targets = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER, persistence=new), CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t) for t in before}
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    return [[a for a in actions if a.spec.name == t.spec.name] for t in targets]


def _described(actions: list[object]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for a in actions:
        if isinstance(a, ConfigSet):
            out.append(("ConfigSet", a.parameter, a.value))
        else:
            out.append((type(a).__name__,))
    return out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (NONE, AOF_1S, [("WriteConfig",), ("ConfigSet", "appendonly", "yes"), ("WaitPersistence",)]),
        (AOF_1S, AOF_ALWAYS, [("WriteConfig",), ("ConfigSet", "appendfsync", "always")]),
        (AOF_ALWAYS, NONE, [("WriteConfig",), ("ConfigSet", "appendfsync", "everysec"),
                            ("ConfigSet", "appendonly", "no")]),
        # Snapshots are armed and taken before the AOF stops being the durable copy.
        (AOF_1S, RDB_6H, [("WriteConfig",), ("ConfigSet", "save", "21600 1"), ("ConfigSet", "appendonly", "no"),
                          ("Snapshot",), ("WaitPersistence",)]),
        (RDB_6H, AOF_1S, [("WriteConfig",), ("ConfigSet", "save", ""), ("ConfigSet", "appendonly", "yes"),
                          ("WaitPersistence",)]),
        (NONE, RDB_6H, [("WriteConfig",), ("ConfigSet", "save", "21600 1"), ("Snapshot",), ("WaitPersistence",)]),
        (RDB_6H, dataclasses.replace(RDB_6H, rdb_frequency=RdbFrequency.ONE_HOUR),
         [("WriteConfig",), ("ConfigSet", "save", "3600 1")]),
        (RDB_6H, NONE, [("WriteConfig",), ("ConfigSet", "save", "")]),
    ],
)  # fmt: skip
def test_persistence_switches_live_on_every_node(
    old: Persistence, new: Persistence, expected: list[tuple[str, ...]]
) -> None:
    primary, replica = _switch(old, new)
    assert _described(primary) == expected
    assert _described(replica) == expected  # the replica holds the same mode


def test_written_config_holds_the_new_persistence() -> None:
    primary, _ = _switch(NONE, AOF_ALWAYS)
    write = primary[0]
    assert isinstance(write, WriteConfig)
    assert "appendonly yes" in write.spec.config.splitlines()
    assert "appendfsync always" in write.spec.config.splitlines()


def test_an_old_snapshot_is_removed_once_persistence_is_off() -> None:
    from amr.logic.operations.plan import RemoveSnapshot

    targets = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t, snapshot_on_disk=True) for t in targets}
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    assert actions == [RemoveSnapshot(t.spec) for t in targets]


@pytest.mark.parametrize(
    "persistence",
    [
        Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.ONE_HOUR),
        Persistence(aof_enabled=True, aof_frequency=AofFrequency.ONE_SECOND),
    ],
)
def test_a_snapshot_stays_while_persistence_is_on(persistence: Persistence) -> None:
    from amr.logic.operations.plan import RemoveSnapshot

    db = database(ClusteringPolicy.NO_CLUSTER, persistence=persistence)
    targets = plan_node_targets(db, CLUSTER, ENV)
    observed = {t.spec.name: in_sync(t, snapshot_on_disk=True) for t in targets}
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    assert not any(isinstance(a, RemoveSnapshot) for a in actions)


def test_no_snapshot_is_removed_while_persistence_is_still_being_switched_off() -> None:
    from amr.logic.operations.plan import RemoveSnapshot

    targets = plan_node_targets(database(ClusteringPolicy.NO_CLUSTER), CLUSTER, ENV)
    observed = {
        t.spec.name: in_sync(t, snapshot_on_disk=True, config={**dict(t.live_config), "save": "3600 1"})
        for t in targets
    }
    actions = plan_database_actions(ClusteringPolicy.NO_CLUSTER, targets, observed, KEYS)
    assert not any(isinstance(a, RemoveSnapshot) for a in actions)
