"""An in-memory stand-in for the reconciler, for API tests without node processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

from amr.errors import NodeError
from amr.model.enums import OperationStatus, ProvisioningState, ResourceState
from amr.model.resources import Cluster, Database, Operation, OperationError, ResourceGroup
from amr.store.repository import Store


class FakeReconciler:
    """Implements amr.api.context.ReconcilerHandle and records what the API asked of it.

    Nothing happens in the background: a test calls ``settle()`` to do what a real reconcile tick
    would do to the store (finish creates and updates, carry out deletes, complete operations).
    Set ``fail_apply`` to make ``apply_database`` raise NodeError, ``memory`` to answer used_memory,
    ``down`` to answer nodes_down.
    """

    def __init__(self, store: Store, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.now = now
        self.notifications = 0
        self.applied: list[Database] = []
        self.down: dict[str, list[str]] = {}  # database key -> what nodes_down answers
        self.flushed: list[tuple[Database, Operation]] = []
        self.restarted: list[tuple[Database, Operation]] = []
        self.memory: dict[str, int] = {}  # database key -> bytes used
        self.fail_apply: str | None = None

    # --- ReconcilerHandle ---
    def notify(self) -> None:
        self.notifications += 1

    async def apply_database(self, db: Database) -> None:
        if self.fail_apply:
            raise NodeError(self.fail_apply)
        self.applied.append(db)

    async def used_memory(self, db: Database) -> int:
        return self.memory.get(db.key, 0)

    async def nodes_down(self, db: Database) -> list[str]:
        return list(self.down.get(db.key, ()))

    def start_flush(self, db: Database, operation: Operation) -> None:
        self.flushed.append((db, operation))
        self._complete(operation)

    def start_restart(self, db: Database, operation: Operation) -> None:
        """Recorded and left running (a restart takes a while): ``settle()`` completes it."""
        self.restarted.append((db, operation))

    # --- what a reconcile tick would do ---
    def settle(self) -> None:
        """Bring every record to its end state and complete pending operations."""
        s = self.store
        for group in s.list(ResourceGroup):
            if group.provisioning_state is ProvisioningState.DELETING:
                for cluster in s.list(Cluster, group.key + "/"):
                    self._delete_cluster(cluster)
                s.delete(group)
                self._complete_for(group.id)
        for cluster in s.list(Cluster):
            if cluster.provisioning_state is ProvisioningState.DELETING:
                self._delete_cluster(cluster)
            elif cluster.provisioning_state.busy:
                s.replace(cluster, _done(cluster))
                self._complete_for(cluster.id)
        for db in s.list(Database):
            if db.provisioning_state is ProvisioningState.DELETING:
                s.delete(db)
                self._complete_for(db.id)
            elif db.provisioning_state.busy:
                s.replace(db, _done(db))
                self._complete_for(db.id)
        for _, op in self.restarted:
            current = s.get(Operation, op.id)
            if current is not None and not current.status.done:
                self._complete(current)

    def fail(self, resource_id: str, code: str, message: str) -> None:
        """Fail the pending operations of a resource, as a failed reconcile would."""
        self._complete_for(resource_id, OperationError(code, message))

    def _delete_cluster(self, cluster: Cluster) -> None:
        for db in self.store.list(Database, cluster.key + "/"):
            self.store.delete(db)
            self._complete_for(db.id)
        current = self.store.get(Cluster, cluster.key)
        if current is not None:
            self.store.delete(current)
        self._complete_for(cluster.id)

    def _complete_for(self, resource_id: str, error: OperationError | None = None) -> None:
        for op in self.store.list(Operation):
            if op.resource_id == resource_id and not op.status.done:
                self._complete(op, error)

    def _complete(self, op: Operation, error: OperationError | None = None) -> None:
        current = self.store.get(Operation, op.id) or op
        status = OperationStatus.FAILED if error else OperationStatus.SUCCEEDED
        self.store.replace(
            current, dataclasses.replace(current, status=status, end_time=self.now().isoformat(), error=error)
        )


def _done(record: Cluster | Database) -> Cluster | Database:
    return dataclasses.replace(
        record, provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING
    )
