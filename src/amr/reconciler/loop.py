"""The reconciler: drives what the API accepted (the store) into running nodes and gateway routes.

Each tick reads the store, settles resource groups and caches (amr.reconciler.caches) and databases
that have work pending, sweeps stray nodes (amr.reconciler.strays), checks every running database
(which is how a restarted control plane adopts the nodes it finds running, without restarting them),
and writes the gateway's route table and the HA watch (amr.reconciler.publish). Each database
converges pass by pass (amr.reconciler.converge): observe once, decide once, act, until the plan is
empty. After each tick it completes, the loop rewrites ``AMR_HOME/run/reconciler.json`` (how many
ticks, when): how an operator, or a test waiting for something not to happen, sees it is alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from amr.errors import AmrError, NodeError
from amr.home import write_reconciler_heartbeat
from amr.logcontext import log_context_for
from amr.logic.operations.foreign_nodes import plan_health_status
from amr.logic.operations.lifecycle import plan_running
from amr.logic.operations.plan import plan_node_targets
from amr.logic.outcomes import Outcome, Severity, info, warning
from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import render_shard_note
from amr.model.enums import OperationStatus, ProvisioningState, ResourceState
from amr.model.ha import HaWatch
from amr.model.node import ProcessState, Role
from amr.model.resources import Cluster, Database, Operation, OperationError
from amr.model.routes import RouteTable
from amr.model.sku import sku_by_name
from amr.nodes.backend import NodeBackend
from amr.reconciler.caches import CacheSettler
from amr.reconciler.converge import NodeConverger, describe_steps
from amr.reconciler.conversion import Converter
from amr.reconciler.events import ConvergeTrace, EventRecorder
from amr.reconciler.ledger import Ledger
from amr.reconciler.migrating import MigratingDatabases
from amr.reconciler.publish import DataPlanePublisher
from amr.reconciler.rolling import RestartRunner
from amr.reconciler.scaling import Scaler
from amr.reconciler.strays import StraySweeper
from amr.settings import Settings
from amr.store.repository import Store

log = logging.getLogger(__name__)

IDLE_INTERVAL = 2.0
# How long a create waits for the gateway to listen on the database's port before it completes anyway.
ENDPOINT_WAIT = 5.0


class Reconciler:
    """Owns every change to nodes. The API only writes the store and calls notify()."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: NodeBackend,
        masters: CredentialMasters,
        write_routes: Callable[[RouteTable], None],
        port_is_free: Callable[[int], bool],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        port_is_listening: Callable[[int], bool] = lambda port: True,
        write_ha_watch: Callable[[HaWatch], None] | None = None,
        write_monitor_watch: Callable[[HaWatch], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._port_is_free = port_is_free
        self._port_is_listening = port_is_listening
        self._publisher = DataPlanePublisher(
            settings, store, write_routes, write_ha_watch, write_monitor_watch
        )
        self._now = now
        self._wake = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._database_tasks: dict[str, asyncio.Task[Outcome | None]] = {}
        self._events = EventRecorder(store, now)
        self._ledger = Ledger(store, now, self.notify)
        # The converger reads which databases migrate slots, the scaler marks them and converges
        # through the converger: both are wired here, neither needs the other's back.
        migrating = MigratingDatabases()
        self._nodes = NodeConverger(settings, backend, self._events, masters, migrating, self._report_health)
        self._scaler = Scaler(
            settings, store, backend, self._ledger, masters.admin_for, self._lock, self._nodes, migrating,
            port_is_free, self.notify,
        )  # fmt: skip
        self._caches = CacheSettler(store, self._ledger, self._scaler)
        self._strays = StraySweeper(settings, store, backend)
        self._converter = Converter(backend, settings.engine.start_timeout, self._pause_failover)
        self._restarts = RestartRunner(
            store, backend, self._events, self._lock, self._nodes.current_targets, self._nodes.converge,
            settings.engine.start_timeout, now, notify=self.notify,
        )  # fmt: skip

    # --- the API's handle ------------------------------------------------------------------------

    def notify(self) -> None:
        self._wake.set()

    async def apply_database(self, db: Database) -> None:
        cluster = self._store.get(Cluster, db.cluster_key)
        if cluster is None:
            raise NodeError(f"the cache of database {db.id} is gone")
        async with self._lock(db.key):
            await self._nodes.converge(db, cluster)

    async def nodes_down(self, db: Database) -> list[str]:
        cluster = self._store.get(Cluster, db.cluster_key)
        if cluster is None:
            return []
        observed = (await self._nodes.observe(db, cluster)).observed
        return [f"{name} ({seen.process.value})" for name, seen in observed.items() if not seen.ready]

    async def used_memory(self, db: Database) -> int:
        total = 0
        cluster = self._store.get(Cluster, db.cluster_key)
        if cluster is None:
            return 0
        for target in await self._nodes.current_targets(db, cluster):
            if target.spec.role is not Role.PRIMARY:
                continue
            admin = self._backend.admin(target.spec)
            try:
                stats = await admin.execute("MEMORY", "STATS")
                if isinstance(stats, list):
                    stats = {str(stats[i]): stats[i + 1] for i in range(0, len(stats) - 1, 2)}
                total += int(stats.get("dataset.bytes", 0) or 0) if isinstance(stats, dict) else 0
            except NodeError:
                pass
            finally:
                await admin.close()
        return total

    def start_restart(self, db: Database, operation: Operation) -> None:
        self._restarts.start(operation)

    def start_flush(self, db: Database, operation: Operation) -> None:
        self._restarts.note_started(operation)
        task = asyncio.get_running_loop().create_task(self._flush(db, operation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick forever: at once when notified, else every IDLE_INTERVAL seconds. After each tick that
        completes, the heartbeat file says how many have (amr.home.write_reconciler_heartbeat)."""
        passes = 0
        while True:
            self._wake.clear()
            try:
                for outcome in await self.tick(wait=False):
                    log.log(outcome.severity, "reconcile: %s", outcome.message)
            except Exception:
                log.exception("reconcile tick failed; retrying")
            else:
                passes += 1
                try:
                    write_reconciler_heartbeat(self._settings, passes, self._now().timestamp())
                except OSError as e:  # only observers read it: never a reason to stop reconciling
                    log.warning("cannot write the reconciler's heartbeat: %s", e)
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_INTERVAL)
            except TimeoutError:
                pass

    async def tick(self, wait: bool = True) -> list[Outcome]:
        """One pass over everything; returns what it did, one outcome per change.

        Each database settles in its own task, so a slow one (a node still starting) never holds up
        another database or the next tick; a database whose task is still running is skipped. With
        ``wait`` the tick also waits for those tasks and returns their outcomes (tests use this);
        without it their outcomes are logged when they finish.
        """
        outcomes: list[Outcome] = self._restarts.resume_interrupted()
        self._publisher.publish()
        self._ledger.prune_operations()
        self._ledger.prune_activity(timedelta(days=self._settings.api.activity_log_retention_days))
        outcomes += await self._caches.settle()
        outcomes += await self._strays.sweep_if_due()
        started = []
        for db in self._store.list(Database):
            if db.key in self._database_tasks:
                continue
            # Every line logged while settling it (and its outcome) names the database.
            context = log_context_for(database=db.id)
            task = asyncio.get_running_loop().create_task(self._settle_database(db), context=context)
            self._database_tasks[db.key] = task
            settled = functools.partial(self._database_settled, db.key, log_outcome=not wait)
            task.add_done_callback(settled, context=log_context_for(database=db.id))
            started.append(task)
        if wait and started:
            outcomes += [o for o in await asyncio.gather(*started) if o]
        self._publisher.publish()
        return outcomes

    def _database_settled(self, key: str, task: asyncio.Task[Outcome | None], *, log_outcome: bool) -> None:
        self._database_tasks.pop(key, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("settling database %s failed", key, exc_info=error)
            return
        outcome = task.result()
        if not outcome:
            return
        if log_outcome:
            log.log(outcome.severity, "reconcile: %s", outcome.message)
        if outcome.changed_state:
            # The database changed state: its cache or group may move on now, and routes may change.
            self._publisher.publish()
            self.notify()

    # --- databases ---------------------------------------------------------------------------------

    async def _settle_database(self, db: Database) -> Outcome | None:
        cluster = self._store.get(Cluster, db.cluster_key)
        async with self._lock(db.key):
            db = self._store.get(Database, db.key) or db
            state = db.provisioning_state
            if state is ProvisioningState.DELETING or cluster is None:
                await self._remove_database(db)
                return info(f"deleted database {db.id}")
            if state is ProvisioningState.FAILED:
                if db.resource_state is ResourceState.CREATE_FAILED:
                    # A failed create leaves nothing running; this also finishes a cleanup that a
                    # crash interrupted.
                    return await self._remove_leftover_nodes(db)
                return None
            trace = ConvergeTrace()
            steady = not state.busy and not cluster.provisioning_state.busy
            # An update of a clustered database may be a NoCluster one's conversion: its nodes go to
            # cluster mode first, and it reaches the SKU's shard count before the update completes.
            reshapes = state is ProvisioningState.UPDATING and db.clustering_policy.cluster_mode
            try:
                converted = await self._convert(db, cluster) if reshapes else ""
                steps = await self._nodes.converge(db, cluster, trace)
                plan = describe_steps(steps)
                if converted:
                    plan = f"{converted}; {plan}"
                if reshapes and await self._scaler.settle_shards(cluster, db):
                    self._events.record(db, trace, steady)
                    return info(f"updating database {db.id}: reaching the SKU's shard count ({plan})")
            except AmrError as e:
                self._events.record(db, trace, steady)
                if not state.busy:
                    # Nothing changed in the store: no one waiting on this database may move on.
                    return warning(f"unhealthy database {db.id}: {e}", changed_state=False)
                outcome = self._fail_database(db, e)
                if state is ProvisioningState.CREATING:
                    await self._remove_nodes(db)
                return outcome
            self._events.record(db, trace, steady)
            if state.busy:
                if state is ProvisioningState.CREATING:
                    await self._wait_for_endpoint(db)
                db = self._store.get(Database, db.key) or db  # settle_shards may have noted shards
                done = plan_running(db)
                action = "create" if state is ProvisioningState.CREATING else "update"
                sku = sku_by_name(cluster.sku_name)
                if action == "update" and sku is not None:
                    # The shard note again, in place of a failed update's reason.
                    note = render_shard_note(sku, db.shard_count, db.clustering_policy)
                    done = dataclasses.replace(done, status_message=note)
                if not self._ledger.replace(db, done):
                    return info(f"database {db.id} changed while it converged; replanning")
                self._ledger.complete(db.id, (action,))
                return info(f"{action}d database {db.id}: {plan}")
            if steady:
                upgrade = await self._restarts.start_upgrade_if_due(
                    db, cluster, str(self._settings.nodes_dir)
                )
                if upgrade:
                    return upgrade
            return warning(f"repaired database {db.id}: {plan}") if steps else None

    async def _wait_for_endpoint(self, db: Database) -> None:
        """Wait (a little) until the gateway listens on the new database's port, so a client that
        connects as soon as the create succeeds is not refused while the gateway loads its routes."""
        deadline = time.monotonic() + ENDPOINT_WAIT
        while not self._port_is_listening(db.port):
            if time.monotonic() > deadline:
                log.warning(
                    "the gateway does not listen on port %s yet; completing the create anyway", db.port
                )
                return
            await asyncio.sleep(0.02)

    async def _convert(self, db: Database, cluster: Cluster) -> str:
        """Bring nodes still in non-cluster mode (a NoCluster database converted to a clustered
        policy) to cluster mode with their data; "" when there were none."""
        try:
            return await self._converter.convert(
                db, plan_node_targets(db, cluster, self._nodes.environment(db, cluster))
            )
        finally:
            self._publisher.resume_failover(db.uid)

    async def _pause_failover(self, db: Database) -> None:
        """Take ``db`` out of the HA watch before a conversion restarts its nodes, so that `amr ha`
        never takes a planned restart for a failure; then give the coordinator time to read it."""
        self._publisher.pause_failover(db.uid)
        await asyncio.sleep(3 * max(self._settings.ha.poll_ms, 10) / 1000)

    def _fail_database(self, db: Database, error: AmrError) -> Outcome:
        creating = db.provisioning_state is ProvisioningState.CREATING
        code = "DatabaseCreateFailed" if creating else "DatabaseUpdateFailed"
        verb = "created" if creating else "updated"
        reason = OperationError(code, f"The database could not be {verb}: {error}")
        failed = dataclasses.replace(
            db,
            provisioning_state=ProvisioningState.FAILED,
            resource_state=ResourceState.CREATE_FAILED if creating else ResourceState.UPDATE_FAILED,
            status_message=db.status_message if creating else reason.message,
        )
        if not self._ledger.replace(db, failed):
            return info(f"database {db.id} changed while it converged; replanning")
        self._ledger.complete(db.id, ("create" if creating else "update",), reason)
        return Outcome(Severity.ERROR, f"database {db.id} failed: {error}")

    async def _remove_leftover_nodes(self, db: Database) -> Outcome | None:
        statuses = [await self._backend.node_status(n.name) for n in db.nodes]
        if all(s.state is ProcessState.ABSENT for s in statuses):
            return None
        await self._remove_nodes(db)
        return warning(f"removed the nodes of failed database {db.id}")

    async def _remove_nodes(self, db: Database) -> None:
        for node in db.nodes:
            await self._backend.remove_node(node.name, f"{self._settings.nodes_dir}/{db.uid}/{node.name}")
        db_dir = self._settings.nodes_dir / db.uid
        try:
            db_dir.rmdir()
        except OSError:
            pass  # already gone, or not empty because a node is still being removed

    async def _remove_database(self, db: Database) -> None:
        await self._pause_failover(db)  # before the nodes stop, which would look like a failure
        await self._remove_nodes(db)
        current = self._store.get(Database, db.key)
        if current is not None and not self._ledger.delete(current):
            return
        self._events.forget(db)
        self._publisher.forget(db.uid)
        self._ledger.complete(db.id, ("delete",))
        gone = OperationError("ResourceDeleted", "The database was deleted before this operation finished.")
        self._ledger.complete(db.id, ("create", "update", "flush"), gone, status=OperationStatus.CANCELED)
        self._publisher.publish()

    async def _flush(self, db: Database, operation: Operation) -> None:
        cluster = self._store.get(Cluster, db.cluster_key)
        error = None
        try:
            if cluster is None:
                raise NodeError("the cache is gone")
            for target in await self._nodes.current_targets(db, cluster):
                if target.spec.role is Role.PRIMARY:
                    admin = self._backend.admin(target.spec)
                    try:
                        await admin.execute("FLUSHALL", "SYNC")
                    finally:
                        await admin.close()
        except AmrError as e:
            error = OperationError("FlushFailed", f"The database could not be flushed: {e}")
        self._ledger.complete(db.id, ("flush",), error, only=operation.id)

    def _report_health(self, db: Database, problems: tuple[str, ...]) -> None:
        """Make a settled clustered database's state tell its cluster's health (see
        ``plan_health_status``); a database or cache with an operation running is left to it."""
        current = self._store.get(Database, db.key)
        cluster = self._store.get(Cluster, db.cluster_key)
        if current is None or cluster is None or cluster.provisioning_state.busy:
            return
        sku = sku_by_name(cluster.sku_name)
        note = render_shard_note(sku, current.shard_count, current.clustering_policy) if sku else ""
        updated = plan_health_status(current, problems, note)
        if updated == current or not self._ledger.replace(current, updated):
            return
        if problems:
            log.warning("database %s is not healthy: %s", db.id, "; ".join(problems))
        else:
            log.info("database %s is healthy again", db.id)

    # --- helpers -----------------------------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())
