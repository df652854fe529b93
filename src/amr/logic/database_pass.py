"""One reconcile pass over a database's nodes, decided at once.

The reconciler observes a database's nodes once into a ``DatabaseSnapshot`` (with the primary of
each shard as last seen clearly, which the event recorder remembers), and ``plan_database_pass``
decides everything from it in one call: the nodes' targets on the roles they have now, the foreign
nodes in their tables, and the actions that close the gap. Nothing is read while deciding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from amr.logic.foreign_nodes import ForeignNode, choose_foreign_nodes
from amr.logic.node_actions import Action
from amr.logic.plan import (
    NodeEnvironment,
    NodeTarget,
    ObservedNode,
    choose_shard_primaries,
    observed_primaries,
    plan_database_actions,
    plan_node_targets,
)
from amr.logic.routes import node_socket_path
from amr.model.node import NodeSpec
from amr.model.resources import Cluster, Database


@dataclass(frozen=True)
class DatabaseSnapshot:
    """Everything one pass over a database's nodes decides on, read once: the record and its cache,
    the host facts, each node as observed (by name), and the primary of each shard as last seen
    clearly (by this control plane or a previous one)."""

    db: Database
    cluster: Cluster
    env: NodeEnvironment
    observed: Mapping[str, ObservedNode]
    last_primaries: Mapping[int, str]


@dataclass(frozen=True)
class DatabasePlan:
    """What one pass decided: every node's target (on the roles the nodes have now), the primaries
    the nodes made clear themselves, the foreign nodes in their tables, and the actions to carry out
    in order (none: the nodes are in sync)."""

    targets: tuple[NodeTarget, ...]
    clear_primaries: Mapping[int, str]
    foreign: tuple[ForeignNode, ...]
    actions: tuple[Action, ...]


def plan_database_pass(snapshot: DatabaseSnapshot) -> DatabasePlan:
    """Decide a database's pass from one snapshot: plan on the roles the nodes have now (a failover
    is accepted, never undone: ``choose_shard_primaries``), look for foreign nodes unless slots are
    migrating (the scaler owns the node tables then: it forgets the shards it removed), and plan the
    actions (``plan_database_actions``)."""
    db, env, observed = snapshot.db, snapshot.env, snapshot.observed
    cluster_mode = db.clustering_policy.cluster_mode
    primaries = choose_shard_primaries(db, observed, cluster_mode, snapshot.last_primaries)
    targets = plan_node_targets(db, snapshot.cluster, env, primaries)
    foreign = choose_foreign_nodes(targets, observed) if cluster_mode and not env.moving_slots else ()
    actions = plan_database_actions(
        db.clustering_policy,
        targets,
        dict(observed),
        (db.primary_key, db.secondary_key),
        env.credentials.replication,
        foreign,
    )
    return DatabasePlan(targets, observed_primaries(db, observed, cluster_mode), foreign, tuple(actions))


def plan_node_locations(db: Database, env: NodeEnvironment) -> tuple[NodeSpec, ...]:
    """Where each node of ``db`` is (name, socket, directory), to observe it before anything is
    decided. Its role is the store's and its config is empty: a location is for looking at a node,
    never for starting one or writing its valkey.conf (the targets of ``plan_database_pass`` are)."""
    return tuple(
        NodeSpec(
            name=node.name,
            database_uid=db.uid,
            shard=node.shard,
            role=node.role,
            directory=f"{env.nodes_dir}/{db.uid}/{node.name}",
            socket=node_socket_path(env.run_dir, node.name),
            internal_host=env.internal_host,
            port=node.port,
            config="",
            cluster_mode=db.clustering_policy.cluster_mode,
        )
        for node in db.nodes
    )
