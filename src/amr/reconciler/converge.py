"""Converging one database's nodes: observe them, plan on the roles they have now, act, until the
plan is empty. The reconciler, the scaler and the rolling restarts all converge through this."""

from __future__ import annotations

import time
from collections.abc import Callable

from amr.errors import NodeError
from amr.logic.foreign_nodes import choose_foreign_nodes, validate_cluster_health
from amr.logic.node_actions import describe_actions
from amr.logic.node_credentials import CredentialMasters
from amr.logic.plan import (
    NodeEnvironment,
    NodeTarget,
    choose_shard_primaries,
    observed_primaries,
    plan_database_actions,
    plan_node_targets,
)
from amr.model.resources import Cluster, Database
from amr.model.sku import sku_by_name
from amr.nodes.backend import NodeBackend
from amr.reconciler.events import ConvergeTrace, EventRecorder, StatusRecorder
from amr.reconciler.nodes import execute_action, observe_node
from amr.settings import Settings

# Connections a node keeps for amr beyond the SKU's client limit: admin, replicas, monitoring.
RESERVED_CLIENTS = 64

# Told what is wrong with a clustered database's cluster (nothing: healthy again).
ReportHealth = Callable[[Database, tuple[str, ...]], None]


class NodeConverger:
    """Brings a database's nodes to what its record and cache say (``converge``), and tells what
    each node should run (``environment``, ``current_targets``). ``report_health`` hears about a
    clustered database's health: at once when a foreign node shows up, when a converge ends (healthy,
    or still not after its deadline)."""

    def __init__(
        self,
        settings: Settings,
        backend: NodeBackend,
        events: EventRecorder,
        masters: CredentialMasters,
        resharding: Callable[[Database], bool],
        report_health: ReportHealth | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._events = events
        self._masters = masters
        self._resharding = resharding
        self._report_health = report_health or (lambda db, problems: None)

    async def current_targets(self, db: Database, cluster: Cluster) -> tuple[NodeTarget, ...]:
        """The database's nodes with the roles they have now (a switchover moves the primary)."""
        env = self.environment(db, cluster)
        cluster_mode = db.clustering_policy.cluster_mode
        targets = plan_node_targets(db, cluster, env)
        observed = {t.spec.name: await observe_node(self._backend, t.spec, cluster_mode) for t in targets}
        primaries = choose_shard_primaries(db, observed, cluster_mode, self._events.last_primaries(db))
        return plan_node_targets(db, cluster, env, primaries)

    async def converge(
        self, db: Database, cluster: Cluster, trace: ConvergeTrace | None = None
    ) -> tuple[str, ...]:
        """Observe, plan and act until the plan is empty; returns the steps taken (none: the nodes
        were in sync), each once. Raises NodeError when they are not in sync by the deadline."""
        env = self.environment(db, cluster)
        backend = StatusRecorder(self._backend)
        targets = plan_node_targets(db, cluster, env)
        keys = (db.primary_key, db.secondary_key)
        replication = env.credentials.replication
        deadline = time.monotonic() + self._settings.engine.start_timeout * 2
        done: list[str] = []
        cluster_mode = db.clustering_policy.cluster_mode
        saw_foreign = False
        while True:
            observed = {t.spec.name: await observe_node(backend, t.spec, cluster_mode) for t in targets}
            # Plan on the roles the nodes have now: a failover is accepted, never undone.
            primaries = choose_shard_primaries(db, observed, cluster_mode, self._events.last_primaries(db))
            targets = plan_node_targets(db, cluster, env, primaries)
            # While slots migrate the scaler owns the node tables (it forgets the shards it removed).
            foreign = choose_foreign_nodes(targets, observed) if cluster_mode and not env.moving_slots else ()
            actions = plan_database_actions(
                db.clustering_policy, targets, observed, keys, replication, foreign
            )
            if trace is not None:
                trace.see(
                    backend.statuses,
                    observed,
                    actions,
                    observed_primaries(db, observed, cluster_mode),
                    foreign,
                )
            if foreign:
                saw_foreign = True
                self._report_health(db, validate_cluster_health(targets, observed, foreign))
            if not actions:
                if cluster_mode and not saw_foreign:
                    # Healthy once a pass finds nothing foreign: the pass that removed a foreign
                    # node leaves the next one (a tick later) to confirm none came back.
                    self._report_health(db, ())
                return tuple(done)
            if time.monotonic() > deadline:
                if cluster_mode:
                    self._report_health(db, validate_cluster_health(targets, observed, foreign))
                raise NodeError(
                    f"the nodes did not reach the desired state: still to do {describe_actions(actions)}"
                )
            step = describe_actions(actions)
            if not done or done[-1] != step:  # waits repeat; log each step once
                done.append(step)
            for action in actions:
                await execute_action(self._backend, action, self._settings.engine.start_timeout)

    def environment(self, db: Database, cluster: Cluster) -> NodeEnvironment:
        sku = sku_by_name(cluster.sku_name)
        memory = sku.max_memory_bytes if sku else 1024**3
        s = self._settings
        moving = self._resharding(db)
        return NodeEnvironment(
            nodes_dir=str(s.nodes_dir),
            run_dir=str(s.run_dir),
            internal_host=s.engine.internal_host,
            public_host=s.gateway.public_host,
            credentials=self._masters.for_database(db.uid),
            rejoin_wait_ms=s.ha.rejoin_wait_ms,
            # While slots migrate a shard may hold more than its final share: no per-shard split then.
            max_memory_bytes=memory if moving else memory // max(1, db.shard_count),
            moving_slots=moving,
            max_clients=(sku.max_connections if sku else 10000) + RESERVED_CLIENTS,
        )


def describe_steps(steps: tuple[str, ...]) -> str:
    """The steps a converge took, as one line for an outcome."""
    return "; ".join(steps) if steps else "in sync"
