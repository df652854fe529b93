"""Restarting a database's nodes as a long-running operation: the restart action (rolling or all at
once) and Azure's upgradeDBRedisVersion, which is a rolling restart onto the engine binary the settings
name. amr.logic.rolling decides each step from one observation of the nodes
(amr.reconciler.rolling_observe); this module acts and records.

A restart holds the database's reconcile lock from start to end, so the reconciler never starts a node
it is restarting or corrects a role it is switching; it converges the database once before it begins
(every node up, in line with its record) and once when it is done (valkey.conf follows switched roles).
Its operation records the nodes' pids when it began, so a control plane that crashed halfway resumes it
on its first tick and carries on from what the nodes say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from amr.errors import AmrError, ConcurrencyError, NodeError
from amr.logic.outcomes import Outcome, Severity, info, warning
from amr.logic.plan import NodeTarget
from amr.logic.rolling import (
    ACTION_RESTART,
    ACTION_UPGRADE,
    RESTART_ACTIONS,
    Done,
    RestartNodes,
    RestartSnapshot,
    Switchover,
    Wait,
    choose_conflicting_operation,
    describe_action,
    describe_switchover,
    plan_restart_event,
    plan_restart_step,
)
from amr.model.enums import OperationStatus, ProvisioningState
from amr.model.node import NodeSpec, ProcessState
from amr.model.resources import Cluster, Database, Operation, OperationError
from amr.nodes.backend import NodeBackend
from amr.nodes.handover import hand_over
from amr.reconciler.events import EventRecorder
from amr.reconciler.rolling_observe import execute, observe_role, observe_rolling_nodes
from amr.store.repository import Store

log = logging.getLogger(__name__)

# How long a switchover may pause writes while the replica takes the last ones (FAILOVER ... TIMEOUT).
# The replica is in sync before it starts, so it normally takes milliseconds.
SWITCHOVER_TIMEOUT_MS = 5000
SWITCHOVER_ATTEMPTS = 3
POLL_INTERVAL = 0.05

Targets = Callable[[Database, Cluster], Awaitable[tuple[NodeTarget, ...]]]
Converge = Callable[[Database, Cluster], Awaitable[tuple[str, ...]]]


class _Gone(AmrError):
    """The database was deleted (or is being deleted) while its restart ran."""


class RestartRunner:
    """Runs restart operations in the background, one task per operation; ``resume_interrupted`` (on
    the control plane's first tick) resumes the ones a crash or stop interrupted and fails the flushes
    it interrupted (they cannot be told apart from a flush still running otherwise)."""

    def __init__(
        self,
        store: Store,
        backend: NodeBackend,
        events: EventRecorder,
        lock: Callable[[str], asyncio.Lock],
        targets: Targets,
        converge: Converge,
        start_timeout: float,
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = POLL_INTERVAL,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._backend = backend
        self._events = events
        self._lock = lock
        self._targets = targets
        self._converge = converge
        self._start_timeout = start_timeout
        # One wait (a node starting, a replica syncing) may last this long before the restart fails.
        self._wait_limit = max(60.0, start_timeout * 4)
        self._now = now
        self._clock = clock
        self._poll = poll_interval
        # Wakes the reconciler after a switchover: it renders the nodes' configs for the new roles.
        self._notify = notify
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._own: set[str] = set()  # operations this control plane runs (or ran)
        self._resumed = False

    def start(self, operation: Operation) -> None:
        """Carry out a restart operation the API just accepted."""
        self._own.add(operation.id)
        task = asyncio.get_running_loop().create_task(self._run(operation))
        self._tasks[operation.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(operation.id, None))

    async def start_upgrade_if_due(self, db: Database, cluster: Cluster, nodes_dir: str) -> Outcome | None:
        """Start a rolling upgrade of a settled database whose nodes run another engine binary than
        ``engine.server_binary`` names now (the setting changed and the control plane restarted): what
        Azure's upgradeDBRedisVersion does, without waiting to be asked.
        Returns the outcome, or None when nothing is due or another operation runs."""
        drifted = [
            n.name
            for n in db.nodes
            if await self._backend.runs_current_binary(n.name, f"{nodes_dir}/{db.uid}/{n.name}") is False
        ]
        if not drifted:
            return None
        if choose_conflicting_operation(self._store.list(Operation), (db.id, cluster.id)) is not None:
            return None  # once that operation is over
        operation = Operation(
            id=str(uuid.uuid4()),
            subscription_id=db.subscription_id,
            location=cluster.location,
            resource_id=db.id,
            action=ACTION_UPGRADE,
            start_time=self._now().isoformat(),
        )
        self._store.insert(operation)
        self.start(operation)
        return info(
            f"nodes {', '.join(drifted)} of database {db.id} run another engine binary than "
            f"engine.server_binary names; started a rolling upgrade (operation {operation.id})"
        )

    def note_started(self, operation: Operation) -> None:
        """Another background operation of this control plane (a flush): not an interrupted one."""
        self._own.add(operation.id)

    def resume_interrupted(self) -> list[Outcome]:
        """Once per control plane: resume the restarts a previous one did not finish, and fail its
        flushes. Synchronous, so it runs before the API takes a request."""
        if self._resumed:
            return []
        self._resumed = True
        outcomes: list[Outcome] = []
        for op in self._store.list(Operation):
            if op.status.done or op.id in self._own:
                continue
            if op.action in RESTART_ACTIONS:
                self.start(op)
                outcomes.append(warning(f"resumed the {describe_action(op.action)} of {op.resource_id}"))
            elif op.action == "flush":
                error = OperationError(
                    "FlushInterrupted",
                    "amr's control plane stopped while the flush ran, so some data may not have been "
                    "deleted; flush the database again.",
                )
                self._finish(op.id, OperationStatus.FAILED, error)
                outcomes.append(Outcome(Severity.ERROR, f"failed the interrupted flush of {op.resource_id}"))
        return outcomes

    # --- one operation ----------------------------------------------------------------------------

    async def _run(self, operation: Operation) -> None:
        what = describe_action(operation.action)
        try:
            summary = await self._restart(operation)
        except _Gone as e:
            self._finish(operation.id, OperationStatus.CANCELED, OperationError("ResourceDeleted", str(e)))
            return
        except AmrError as e:
            log.warning("the %s of %s failed: %s", what, operation.resource_id, e)
            code = "UpgradeFailed" if operation.action == ACTION_UPGRADE else "RestartFailed"
            message = (
                f"The {what} of the database stopped: {e}. The database keeps serving with the nodes "
                "restarted so far; run it again to finish."
            )
            self._finish(operation.id, OperationStatus.FAILED, OperationError(code, message))
            return
        except Exception:
            log.exception("the %s of %s failed unexpectedly", what, operation.resource_id)
            message = f"The {what} of the database stopped on an unexpected error; see AMR_HOME/logs/api.log."
            self._finish(operation.id, OperationStatus.FAILED, OperationError("InternalServerError", message))
            return
        log.info("%s of %s: %s", what, operation.resource_id, summary)
        self._finish(operation.id, OperationStatus.SUCCEEDED, None, summary)

    async def _restart(self, operation: Operation) -> str:
        db, _ = self._load(operation)
        async with self._lock(db.key):
            db, cluster = self._load(operation)
            # Start from a database in line with its record: every node up, configs on disk.
            await self._converge(db, cluster)
            operation = await self._remember_pids(operation, db)
            rolling = operation.action != ACTION_RESTART
            upgrade = operation.action == ACTION_UPGRADE
            persistence = db.persistence.aof_enabled or db.persistence.rdb_enabled
            cluster_mode = db.clustering_policy.cluster_mode
            waiting, since = "", self._clock()
            attempts: dict[int, int] = {}
            last_error = ""
            while True:
                db, cluster = self._load(operation)
                targets = {t.spec.name: t for t in await self._targets(db, cluster)}
                nodes = await observe_rolling_nodes(self._backend, db, targets, cluster_mode)
                step = plan_restart_step(
                    RestartSnapshot(nodes, operation.node_pids, rolling, cluster_mode, persistence, upgrade)
                )
                if isinstance(step, Done):
                    await self._converge(db, cluster)  # valkey.conf follows the switched roles
                    return step.summary
                if isinstance(step, Wait):
                    if step.reason != waiting:
                        log.info(
                            "%s of %s: waiting: %s", describe_action(operation.action), db.id, step.reason
                        )
                        waiting, since = step.reason, self._clock()
                    elif self._clock() - since > self._wait_limit:
                        raise NodeError(f"{step.reason}, still after {self._wait_limit:.0f} s")
                    await asyncio.sleep(self._poll)
                    continue
                waiting = ""
                log.info("%s of %s: %s", describe_action(operation.action), db.id, step)
                if isinstance(step, RestartNodes):
                    await self._restart_nodes(db, targets, step)
                elif isinstance(step, Switchover):
                    attempts[step.shard] = attempts.get(step.shard, 0) + 1
                    if attempts[step.shard] > SWITCHOVER_ATTEMPTS:
                        raise NodeError(
                            f"shard {step.shard} did not switch over from {step.old_primary} to "
                            f"{step.new_primary} in {SWITCHOVER_ATTEMPTS} attempts: {last_error}"
                        )
                    last_error = await self._switchover(db, targets, step, cluster_mode, upgrade)

    def _load(self, operation: Operation) -> tuple[Database, Cluster]:
        """The operation's database and its cache as stored now; _Gone once they are (being) deleted."""
        for db in self._store.list(Database):
            if db.id.lower() != operation.resource_id.lower():
                continue
            cluster = self._store.get(Cluster, db.cluster_key)
            deleting = ProvisioningState.DELETING
            if cluster is None or deleting in (db.provisioning_state, cluster.provisioning_state):
                break
            return db, cluster
        raise _Gone(f"The database was deleted before its {describe_action(operation.action)} finished.")

    async def _remember_pids(self, operation: Operation, db: Database) -> Operation:
        """Record the nodes' pids in the operation once, when it begins (a resumed one has them)."""
        if operation.node_pids:
            return operation
        pids = {}
        for node in db.nodes:
            status = await self._backend.node_status(node.name)
            if status.state is not ProcessState.RUNNING or status.pid is None:
                raise NodeError(f"node {node.name} is not running ({status.state.value})")
            pids[node.name] = status.pid
        for _ in range(3):
            current = self._store.get(Operation, operation.id)
            if current is None or current.status.done:
                raise _Gone("The operation was finished by someone else.")
            updated = dataclasses.replace(current, node_pids=pids)
            try:
                self._store.replace(current, updated)
                return updated
            except ConcurrencyError:
                continue
        raise NodeError("could not record the operation's progress in the store")

    async def _restart_nodes(self, db: Database, targets: dict[str, NodeTarget], step: RestartNodes) -> None:
        results = await asyncio.gather(
            *(self._restart_node(db, targets[name].spec, step.cause) for name in step.names),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _restart_node(self, db: Database, spec: NodeSpec, cause: str) -> None:
        before = await self._backend.node_status(spec.name)
        # valkey.conf on disk gets the role the node has now (a primary that handed over is a replica
        # now), so it starts in that role; this never restarts a running node.
        await self._backend.ensure_node(spec)
        started = self._clock()
        await self._backend.restart_node(spec.name)
        await self._backend.wait_ready(spec, self._start_timeout)
        took = int((self._clock() - started) * 1000)
        after = await self._backend.node_status(spec.name)
        self._events.record_restart(
            db,
            plan_restart_event(
                db.key, db.id, self._now(), spec.name, spec.shard,
                f"{cause} (it answered {took} ms after it was stopped)", before.pid, after.pid,
            ),
        )  # fmt: skip

    async def _switchover(
        self,
        db: Database,
        targets: dict[str, NodeTarget],
        step: Switchover,
        cluster_mode: bool,
        upgrade: bool,
    ) -> str:
        """Hand the shard over and wait until the roles have switched; "" once they have, else why not."""
        old, new = targets[step.old_primary].spec, targets[step.new_primary].spec
        started = self._clock()
        try:
            if cluster_mode:
                await execute(self._backend, new, "CLUSTER", "FAILOVER")
            else:
                # Writes pause on the primary until the replica has every one, then the two switch;
                # the gateway follows the new primary by itself (amr.nodes.handover).
                await self._hand_over(old, new)
        except NodeError as e:
            log.warning("switchover of shard %s to %s failed: %s", step.shard, step.new_primary, e)
            return str(e)
        deadline = started + SWITCHOVER_TIMEOUT_MS / 1000 + 5
        while self._clock() < deadline:
            roles = (await observe_role(self._backend, new), await observe_role(self._backend, old))
            if roles == ("master", "slave"):
                took = int((self._clock() - started) * 1000)
                cause = describe_switchover(step, upgrade, took)
                self._events.record_switchover(db, step.shard, step.old_primary, step.new_primary, cause)
                self._notify()
                return ""
            await asyncio.sleep(self._poll / 5)
        return f"the roles had not switched {deadline - started:.0f} s after the switchover began"

    async def _hand_over(self, old: NodeSpec, new: NodeSpec) -> None:
        primary, replica = self._backend.admin(old), self._backend.admin(new)
        try:
            await hand_over(primary, replica, new.internal_host, new.port, SWITCHOVER_TIMEOUT_MS)
        finally:
            await primary.close()
            await replica.close()

    def _finish(
        self, op_id: str, status: OperationStatus, error: OperationError | None, message: str = ""
    ) -> None:
        for _ in range(3):
            current = self._store.get(Operation, op_id)
            if current is None or current.status.done:
                return
            done = dataclasses.replace(
                current, status=status, end_time=self._now().isoformat(), error=error, message=message
            )
            try:
                self._store.replace(current, done)
                return
            except ConcurrencyError:
                continue
