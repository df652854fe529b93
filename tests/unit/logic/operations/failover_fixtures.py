"""A database whose nodes were switched over (primary and replica swapped): the world the failover
and database-pass tests start from."""

from __future__ import annotations

import dataclasses

from amr.logic.operations.node_state import NodeEnvironment, NodeTarget, ObservedNode, ObservedUser
from amr.logic.operations.plan import plan_node_targets
from amr.logic.render.valkey_conf import render_internal_users
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.enums import ClusteringPolicy, Toggle
from amr.model.node import ProcessState, Role
from amr.model.resources import Cluster, Database, NodeAssignment

CREDENTIALS = CredentialMasters("admin-secret", "ha-secret", "gw-secret").for_database("d1")


ENV = NodeEnvironment("/h/nodes", "/h/run", "127.0.0.2", "localhost", CREDENTIALS, 512 * 1024**2)


CLUSTER = Cluster("sub", "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED)


NODES = (
    NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500),
    NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501),
)


KEYS = ("primary-key", "secondary-key")


OSS = ClusteringPolicy.OSS_CLUSTER


NOC = ClusteringPolicy.NO_CLUSTER


def database(policy: ClusteringPolicy) -> Database:
    return Database(
        "sub", "rg", "c1", "d1", 10000, *KEYS, clustering_policy=policy,
        access_keys_authentication=Toggle.ENABLED, nodes=NODES,
    )  # fmt: skip


def seen(target: NodeTarget, **changes: object) -> ObservedNode:
    node = ObservedNode(
        name=target.spec.name,
        process=ProcessState.RUNNING,
        ready=True,
        config=dict(target.live_config),
        default_user_on=target.default_user_on,
        default_user_hashes=target.default_user_hashes,
        internal_users={
            u.name: ObservedUser(True, frozenset({u.password_hash}), " ".join(u.rule[4:]) or "+@all")
            for u in render_internal_users(CREDENTIALS)
        },
        config_file=target.spec.config,
    )
    return dataclasses.replace(node, **changes)


def switched_cluster(db: Database) -> dict[str, ObservedNode]:
    """d1-0-1 took over (CLUSTER FAILOVER): it holds the slots, d1-0-0 follows it."""
    targets = {t.spec.name: t for t in plan_node_targets(db, CLUSTER, ENV, {0: "d1-0-1"})}
    both = frozenset({"P", "R"})
    return {
        "d1-0-0": seen(targets["d1-0-0"], cluster_id="P", cluster_known_ids=both, cluster_state_ok=True,
                       cluster_primary_id="R", role="slave"),
        "d1-0-1": seen(targets["d1-0-1"], cluster_id="R", cluster_known_ids=both, cluster_state_ok=True,
                       cluster_slots_assigned=16384, cluster_slot_ranges=((0, 16383),), role="master"),
    }  # fmt: skip
