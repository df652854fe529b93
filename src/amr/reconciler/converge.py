"""Converging one database's nodes: observe them, plan on the roles they have now, act, until the
plan is empty. The reconciler, the scaler and the rolling restarts all converge through this."""

from __future__ import annotations

import time
from collections.abc import Callable

from amr.errors import NodeError
from amr.logic.operations.database_pass import DatabaseSnapshot, plan_database_pass, plan_node_locations
from amr.logic.operations.foreign_nodes import validate_cluster_health
from amr.logic.operations.node_actions import describe_actions
from amr.logic.operations.node_state import NodeEnvironment, NodeTarget
from amr.logic.render.announce import choose_client_announcement
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.resources import Cluster, Database
from amr.model.sku import sku_by_name
from amr.nodes.backend import NodeBackend
from amr.reconciler.events import ConvergeTrace, EventRecorder, StatusRecorder
from amr.reconciler.migrating import MigratingDatabases
from amr.reconciler.nodes import execute_action, observe_node
from amr.settings import Settings

# Connections a node keeps for amr beyond the SKU's client limit: admin, replicas, monitoring.
RESERVED_CLIENTS = 64

# Told what is wrong with a clustered database's cluster (nothing: healthy again).
ReportHealth = Callable[[Database, tuple[str, ...]], None]


class NodeConverger:
    """Brings a database's nodes to what its record and cache say (``converge``), and tells what
    each node should run (``environment``, ``current_targets``). Each pass observes the nodes once
    (``observe``) and decides once (``plan_database_pass``). ``report_health`` hears about a
    clustered database's health: at once when a foreign node shows up, when a converge ends (healthy,
    or still not after its deadline)."""

    def __init__(
        self,
        settings: Settings,
        backend: NodeBackend,
        events: EventRecorder,
        masters: CredentialMasters,
        migrating: MigratingDatabases,
        report_health: ReportHealth | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._events = events
        self._masters = masters
        self._migrating = migrating
        self._report_health = report_health or (lambda db, problems: None)

    async def observe(
        self,
        db: Database,
        cluster: Cluster,
        env: NodeEnvironment | None = None,
        backend: NodeBackend | None = None,
    ) -> DatabaseSnapshot:
        """Observe every node of ``db`` once, into the snapshot one pass decides on."""
        env = env or self.environment(db, cluster)
        backend = backend or self._backend
        cluster_mode = db.clustering_policy.cluster_mode
        locations = plan_node_locations(db, env)
        observed = {spec.name: await observe_node(backend, spec, cluster_mode) for spec in locations}
        return DatabaseSnapshot(db, cluster, env, observed, self._events.last_primaries(db))

    async def current_targets(self, db: Database, cluster: Cluster) -> tuple[NodeTarget, ...]:
        """The database's nodes with the roles they have now (a switchover moves the primary)."""
        return plan_database_pass(await self.observe(db, cluster)).targets

    async def converge(
        self, db: Database, cluster: Cluster, trace: ConvergeTrace | None = None
    ) -> tuple[str, ...]:
        """Observe, plan and act until the plan is empty; returns the steps taken (none: the nodes
        were in sync), each once. Raises NodeError when they are not in sync by the deadline."""
        env = self.environment(db, cluster)
        backend = StatusRecorder(self._backend)
        deadline = time.monotonic() + self._settings.engine.start_timeout * 2
        done: list[str] = []
        cluster_mode = db.clustering_policy.cluster_mode
        saw_foreign = False
        while True:
            snapshot = await self.observe(db, cluster, env, backend)
            plan = plan_database_pass(snapshot)
            observed = snapshot.observed
            if trace is not None:
                trace.see(backend.statuses, observed, plan.actions, plan.clear_primaries, plan.foreign)
            if plan.foreign:
                saw_foreign = True
                self._report_health(db, validate_cluster_health(plan.targets, observed, plan.foreign))
            if not plan.actions:
                if cluster_mode and not saw_foreign:
                    # Healthy once a pass finds nothing foreign: the pass that removed a foreign
                    # node leaves the next one (a tick later) to confirm none came back.
                    self._report_health(db, ())
                return tuple(done)
            if time.monotonic() > deadline:
                if cluster_mode:
                    self._report_health(db, validate_cluster_health(plan.targets, observed, plan.foreign))
                raise NodeError(
                    f"the nodes did not reach the desired state: still to do {describe_actions(plan.actions)}"
                )
            step = describe_actions(plan.actions)
            if not done or done[-1] != step:  # waits repeat; log each step once
                done.append(step)
            for action in plan.actions:
                await execute_action(self._backend, action, self._settings.engine.start_timeout)

    def environment(self, db: Database, cluster: Cluster) -> NodeEnvironment:
        sku = sku_by_name(cluster.sku_name)
        memory = sku.max_memory_bytes if sku else 1024**3
        s = self._settings
        moving = db in self._migrating
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
            client_announcement=choose_client_announcement(
                s.gateway.public_host, s.gateway.bind_hosts, self._backend.engine_version
            ),
        )


def describe_steps(steps: tuple[str, ...]) -> str:
    """The steps a converge took, as one line for an outcome."""
    return "; ".join(steps) if steps else "in sync"
