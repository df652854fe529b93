"""Planning a database's nodes: desired state + observed state -> the actions that close the gap.

The reconciler observes every node of a database into one immutable snapshot, calls
``plan_database_actions`` and executes the actions in order, then observes again until the plan is
empty. Every action is idempotent, so a crash halfway just replans.
"""

from __future__ import annotations

from collections.abc import Mapping

from amr.logic.keyspace.slots import ALL_SLOTS, plan_slot_ranges, plan_unowned_ranges
from amr.logic.operations.foreign_nodes import ForeignNode, plan_foreign_node_repair
from amr.logic.operations.node_actions import (
    Action,
    AddSlots,
    ClusterMeet,
    ClusterReplicate,
    ConfigSet,
    EnsureNode,
    RemoveSnapshot,
    SetDefaultUser,
    SetInternalUser,
    Snapshot,
    WaitCluster,
    WaitPersistence,
    WaitReady,
    WriteConfig,
)
from amr.logic.operations.node_state import NodeEnvironment, NodeTarget, ObservedNode
from amr.logic.render.announce import render_announce_settings
from amr.logic.render.routes import node_socket_path
from amr.logic.render.valkey_conf import (
    NodeConfigInput,
    default_user_is_current,
    internal_user_is_current,
    password_hash,
    render_client_memory_limits,
    render_default_user_rule,
    render_eviction_policy,
    render_internal_users,
    render_moving_slots_settings,
    render_persistence,
    render_valkey_conf,
)
from amr.logic.security.node_credentials import REPLICATION_USER
from amr.model.enums import ClusteringPolicy, Toggle
from amr.model.node import NodeSpec, Role
from amr.model.resources import Cluster, Database


def plan_node_targets(
    db: Database,
    cluster: Cluster,
    env: NodeEnvironment,
    primaries: Mapping[int, str] | None = None,
) -> tuple[NodeTarget, ...]:
    """Specs and live settings of every node of ``db``.

    ``primaries`` names the node that is primary now, per shard (see ``choose_shard_primaries``): a
    failover moves the primary away from the one the store was created with, and every spec (role,
    ``replicaof`` of a non-clustered replica) follows it, so the control plane never undoes a
    failover and a restarted node comes back as a replica of the current primary. Shards it does not
    name keep the store's roles."""
    enabled = db.access_keys_authentication is Toggle.ENABLED
    keys = (db.primary_key, db.secondary_key)
    persistence = render_persistence(db.persistence)
    # ``save`` before ``appendonly``: switching from AOF to RDB arms snapshots before the AOF stops.
    live = (
        ("maxmemory", str(env.max_memory_bytes)),
        ("maxmemory-policy", render_eviction_policy(db.eviction_policy)),
        *render_client_memory_limits(env.max_memory_bytes),
        ("appendfsync", persistence.appendfsync),
        ("save", persistence.save),
        ("appendonly", persistence.appendonly),
        # A replica announces the address it listens on, so a primary handing over (FAILOVER) can
        # reach it; without it the primary sees the connection's source address.
        ("replica-announce-ip", env.internal_host),
        *render_moving_slots_settings(env.moving_slots),
        # Held live too, so the nodes of a database created before (or a changed public host) show
        # clients the public address without a restart.
        *(
            render_announce_settings(env.public_host, env.client_announcement)
            if db.clustering_policy.cluster_mode
            else ()
        ),
    )
    leaders = {n.shard: n for n in db.nodes if n.role is Role.PRIMARY}
    by_name = {n.name: n for n in db.nodes}
    for shard, name in (primaries or {}).items():
        if name in by_name and by_name[name].shard == shard:
            leaders[shard] = by_name[name]
    internal_users = render_internal_users(env.credentials)
    targets = []
    for node in db.nodes:
        directory = f"{env.nodes_dir}/{db.uid}/{node.name}"
        socket = node_socket_path(env.run_dir, node.name)
        primary = leaders.get(node.shard)
        role = Role.PRIMARY if primary is node else Role.REPLICA
        conf = render_valkey_conf(
            NodeConfigInput(
                role=role,
                directory=directory,
                socket=socket,
                internal_host=env.internal_host,
                port=node.port,
                public_host=env.public_host,
                clustering_policy=db.clustering_policy,
                max_memory_bytes=env.max_memory_bytes,
                eviction_policy=db.eviction_policy,
                persistence=db.persistence,
                access_keys_enabled=enabled,
                access_keys=keys,
                credentials=env.credentials,
                primary_port=primary.port if primary and role is Role.REPLICA else None,
                max_clients=env.max_clients,
                moving_slots=env.moving_slots,
                client_announcement=env.client_announcement,
            )
        )
        spec = NodeSpec(
            name=node.name,
            database_uid=db.uid,
            shard=node.shard,
            role=role,
            directory=directory,
            socket=socket,
            internal_host=env.internal_host,
            port=node.port,
            config=conf,
            peers=tuple(n.port for n in db.nodes if n.shard == node.shard and n is not node),
            cluster_mode=db.clustering_policy.cluster_mode,
            rejoin_wait_ms=env.rejoin_wait_ms,
        )
        hashes = frozenset(password_hash(k)[1:] for k in keys if k)
        targets.append(NodeTarget(spec, live, enabled, hashes, internal_users))
    return tuple(targets)


def observed_primaries(
    db: Database, observed: Mapping[str, ObservedNode], cluster_mode: bool
) -> dict[int, str]:
    """The shards whose primary the nodes make clear: exactly one node of the shard is a master (in
    cluster mode: a master that holds slots). Shards with none or several are left out."""
    chosen: dict[int, str] = {}
    for shard in sorted({n.shard for n in db.nodes}):
        masters = []
        for node in db.nodes:
            seen = observed.get(node.name)
            if node.shard != shard or seen is None or not seen.ready:
                continue
            if cluster_mode:
                if (
                    seen.cluster_id is not None
                    and seen.cluster_primary_id is None
                    and seen.cluster_slots_assigned
                ):
                    masters.append(node.name)
            elif seen.role == "master":
                masters.append(node.name)
        if len(masters) == 1:
            chosen[shard] = masters[0]
    return chosen


def choose_shard_primaries(
    db: Database,
    observed: Mapping[str, ObservedNode],
    cluster_mode: bool,
    previous: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Which node is each shard's primary now: the one the nodes make clear (``observed_primaries``);
    on an unclear picture (a failover in progress, a node down) the primary last seen clearly
    (``previous``), else the one the store was created with, so nothing moves on an unclear picture."""
    names = {n.name: n.shard for n in db.nodes}
    chosen: dict[int, str] = {}
    for node in db.nodes:
        if node.role is Role.PRIMARY:
            chosen.setdefault(node.shard, node.name)
    for shard, name in (previous or {}).items():
        if names.get(name) == shard:
            chosen[shard] = name
    chosen.update(observed_primaries(db, observed, cluster_mode))
    return chosen


def plan_database_actions(
    policy: ClusteringPolicy,
    targets: tuple[NodeTarget, ...],
    observed: dict[str, ObservedNode],
    keys: tuple[str, str],
    replication_password: str = "",
    foreign: tuple[ForeignNode, ...] = (),
) -> list[Action]:
    """Decide what to do next for a database's nodes.

    Nodes that are not up come first (start them and wait); once all are up, live settings are
    corrected, then the cluster topology (slots on each primary, replicas following their primary).
    While the nodes' tables hold ``foreign`` nodes (see ``amr.logic.operations.foreign_nodes``) their repair
    replaces the topology planning, which resumes once they are forgotten.

    A node whose live settings, default user or internal users (amr's own, see
    ``render_internal_users``; ``replication_password`` is the one replicas log in with) drift first gets its valkey.conf rewritten (so a restart
    keeps the change, and a crash between the two steps replans both). Switching AOF on is followed by
    a wait for its first rewrite; switching RDB on by a snapshot and a wait for it.
    """
    actions: list[Action] = []
    for t in targets:
        seen = observed.get(t.spec.name)
        if seen is None or not seen.ready:
            actions += [EnsureNode(t.spec), WaitReady(t.spec)]
    if actions:
        return actions

    for t in targets:
        seen = observed[t.spec.name]
        changes: list[Action] = []
        for parameter, value in t.live_config:
            # A setting the node does not report is one its engine does not have (it is left out of
            # valkey.conf for such an engine too).
            if parameter in seen.config and seen.config[parameter] != value:
                changes.append(ConfigSet(t.spec, parameter, value))
        rule = tuple(render_default_user_rule(t.default_user_on, keys))
        if (
            seen.default_user_on != t.default_user_on
            or seen.default_user_hashes != t.default_user_hashes
            or not default_user_is_current(rule, seen.default_user_commands)
        ):
            changes.append(SetDefaultUser(t.spec, rule, disconnect_clients=not t.default_user_on))
        for user in t.internal_users if seen.internal_users is not None else ():
            have = seen.internal_users.get(user.name) if seen.internal_users is not None else None
            if have is None or not internal_user_is_current(user, have.on, have.hashes, have.commands):
                auth = replication_password if user.name == REPLICATION_USER else ""
                changes.append(SetInternalUser(t.spec, user.name, user.rule, auth))
        if not changes:
            if seen.config_file is not None and seen.config_file != t.spec.config:
                actions.append(WriteConfig(t.spec))
            if seen.snapshot_on_disk and _persistence_off(t, seen):
                actions.append(RemoveSnapshot(t.spec))
            continue
        actions.append(WriteConfig(t.spec))
        actions += changes
        actions += _plan_persistence_switch(t, seen)

    if policy.cluster_mode:
        repair = plan_foreign_node_repair(targets, observed, foreign)
        actions += repair if repair else _plan_cluster_topology(targets, observed)
    return actions


def _persistence_off(target: NodeTarget, seen: ObservedNode) -> bool:
    """Neither AOF nor RDB is wanted, and the engine already runs that way."""
    wanted = dict(target.live_config)
    off = {"appendonly": "no", "save": ""}
    return all(wanted.get(k) == v and seen.config.get(k) == v for k, v in off.items())


def _plan_persistence_switch(target: NodeTarget, seen: ObservedNode) -> list[Action]:
    wanted = dict(target.live_config)
    aof_on = wanted.get("appendonly") == "yes" and seen.config.get("appendonly") != "yes"
    rdb_on = bool(wanted.get("save")) and not seen.config.get("save")
    if rdb_on:
        return [Snapshot(target.spec), WaitPersistence(target.spec)]
    if aof_on:
        return [WaitPersistence(target.spec)]
    return []


def _plan_cluster_topology(
    targets: tuple[NodeTarget, ...], observed: dict[str, ObservedNode]
) -> list[Action]:
    """Slots and replication per shard, on the roles the targets carry (which follow the observed
    primary, see ``choose_shard_primaries``): the primaries of all shards know each other (they meet
    shard 0's); a shard's primary gets the part of its range (``plan_slot_ranges``) that no node
    owns; the other nodes of a shard replicate its primary, whichever node that is now."""
    actions: list[Action] = []
    primaries = {t.spec.shard: t for t in targets if t.spec.role is Role.PRIMARY}
    ranges = plan_slot_ranges(len(primaries))
    first = primaries.get(0)
    first_id = observed[first.spec.name].cluster_id if first is not None else None
    for shard, primary in sorted(primaries.items()):
        if shard == 0 or first is None or first_id is None:
            continue
        if first_id not in observed[primary.spec.name].cluster_known_ids:
            actions.append(ClusterMeet(primary.spec, first.spec.internal_host, first.spec.port))
    owned = [r for t in targets for r in observed[t.spec.name].cluster_slot_ranges]
    settled: dict[int, bool] = {}  # False: no clear primary to replicate yet
    for shard, primary in sorted(primaries.items()):
        seen = observed[primary.spec.name]
        shard_slots = sum(
            observed[t.spec.name].cluster_slots_assigned for t in targets if t.spec.shard == shard
        )
        unclear = bool(seen.cluster_primary_id) or (shard_slots > 0 and seen.cluster_slots_assigned == 0)
        settled[shard] = not unclear
        if unclear:
            # Slots are held, but not by one clear primary: a failover is still settling.
            actions.append(WaitCluster(primary.spec, f"shard {shard} has no single primary yet"))
        elif shard < len(ranges) and (free := plan_unowned_ranges(ranges[shard], owned)):
            # Only slots nobody owns: a new database's, or the rest of a converted NoCluster
            # database's (its primary claimed the slots of its keys at its first start in cluster
            # mode). A shard added by a scale-out starts empty and gets its slots by migration
            # (amr.logic.topology.resharding), never by ADDSLOTS: they are owned by the shards it comes from.
            actions.append(AddSlots(primary.spec, free[0][0], free[0][1], tuple(free[1:])))
        elif not seen.cluster_state_ok:
            actions.append(WaitCluster(primary.spec, f"cluster state of shard {shard} not ok yet"))
        elif seen.cluster_slots_seen is not None and seen.cluster_slots_seen < ALL_SLOTS:
            # Every slot is assigned, but this primary has not heard of every owner yet: its
            # CLUSTER SLOTS (what a cluster client reads first) would leave slots out.
            actions.append(WaitCluster(primary.spec, f"shard {shard} does not see every slot's owner yet"))
    for t in targets:
        if t.spec.role is not Role.REPLICA:
            continue
        leader = primaries.get(t.spec.shard)
        if leader is None:
            continue
        seen = observed[t.spec.name]
        primary_id = observed[leader.spec.name].cluster_id
        if primary_id is None:
            continue
        if primary_id not in seen.cluster_known_ids:
            actions.append(ClusterMeet(t.spec, leader.spec.internal_host, leader.spec.port))
        elif seen.cluster_primary_id != primary_id and settled.get(t.spec.shard, True):
            actions.append(ClusterReplicate(t.spec, primary_id))
    return actions
