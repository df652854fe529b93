"""A cluster, its database and node targets observed in sync: the world the plan tests start from."""

from __future__ import annotations

import dataclasses

from amr.logic.operations.node_state import NodeEnvironment, NodeTarget, ObservedNode
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.enums import ClusteringPolicy, Toggle
from amr.model.node import ProcessState, Role
from amr.model.resources import Cluster, Database, NodeAssignment

ENV = NodeEnvironment(
    "/h/nodes",
    "/h/run",
    "127.0.0.2",
    "localhost",
    CredentialMasters("admin-secret").for_database("d1"),
    512 * 1024**2,
)


CLUSTER = Cluster("sub", "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED)


NODES = (
    NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500),
    NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501),
)


def database(policy: ClusteringPolicy = ClusteringPolicy.OSS_CLUSTER, **changes: object) -> Database:
    db = Database(
        "sub", "rg", "c1", "d1", 10000, "primary-key", "secondary-key",
        clustering_policy=policy, access_keys_authentication=Toggle.ENABLED, nodes=NODES,
    )  # fmt: skip
    return dataclasses.replace(db, **changes)


def in_sync(target: NodeTarget, **changes: object) -> ObservedNode:
    """What a node that matches its target looks like (cluster fields filled by callers)."""
    node = ObservedNode(
        name=target.spec.name,
        process=ProcessState.RUNNING,
        ready=True,
        config=dict(target.live_config),
        default_user_on=target.default_user_on,
        default_user_hashes=target.default_user_hashes,
    )
    return dataclasses.replace(node, **changes)


def synced_cluster(targets: tuple[NodeTarget, ...]) -> dict[str, ObservedNode]:
    primary, replica = targets
    return {
        primary.spec.name: in_sync(
            primary, cluster_id="P", cluster_known_ids=frozenset({"P", "R"}),
            cluster_slots_assigned=16384, cluster_slot_ranges=((0, 16383),), cluster_state_ok=True,
        ),
        replica.spec.name: in_sync(
            replica, cluster_id="R", cluster_known_ids=frozenset({"P", "R"}),
            cluster_state_ok=True, cluster_primary_id="P",
        ),
    }  # fmt: skip


KEYS = ("primary-key", "secondary-key")
