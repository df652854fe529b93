"""The reconciler's writes to the store: compare-and-swap of resource records, and the bookkeeping of
long-running operations (completing them, forgetting old ones)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from amr.errors import ConcurrencyError
from amr.logic.arm.activity import render_event_time
from amr.model.enums import OperationStatus
from amr.model.resources import Cluster, Database, Operation, OperationError, ResourceGroup
from amr.store.repository import Store

log = logging.getLogger(__name__)

OPERATION_RETENTION = timedelta(days=1)
# The activity log is pruned at most this often: entries live for days, a pass every second
# would only add writes.
ACTIVITY_PRUNE_INTERVAL = timedelta(hours=1)

Resource = Cluster | Database | ResourceGroup


class Ledger:
    """Writes that lose to a concurrent API change report False and ask for a prompt replan."""

    def __init__(self, store: Store, now: Callable[[], datetime], replan: Callable[[], None]) -> None:
        self._store = store
        self._now = now
        self._replan = replan
        self._activity_pruned_at: datetime | None = None

    def replace(self, old: Resource, new: Resource) -> bool:
        """Compare-and-swap a record; False (and a prompt replan) when the API changed it meanwhile."""
        try:
            self._store.replace(old, new)
            return True
        except ConcurrencyError:
            log.info("record %s changed meanwhile; next tick replans", old.key)
            self._replan()
            return False

    def delete(self, old: Resource) -> bool:
        """Delete a record unless the API changed it meanwhile (then False and a prompt replan)."""
        try:
            self._store.delete(old)
            return True
        except ConcurrencyError:
            log.info("record %s changed meanwhile; next tick replans", old.key)
            self._replan()
            return False

    def complete(
        self,
        resource_id: str,
        actions: tuple[str, ...],
        error: OperationError | None = None,
        only: str | None = None,
        status: OperationStatus | None = None,
    ) -> None:
        """Finish the in-progress operations of ``actions`` on a resource (or just ``only``)."""
        final = status or (OperationStatus.FAILED if error else OperationStatus.SUCCEEDED)
        for op in self._store.list(Operation):
            if op.resource_id != resource_id or op.status.done or op.action not in actions:
                continue
            if only and op.id != only:
                continue
            try:
                self._store.replace(
                    op, dataclasses.replace(op, status=final, end_time=self._now().isoformat(), error=error)
                )
            except ConcurrencyError:
                pass  # finished by someone else meanwhile

    def prune_operations(self) -> None:
        """Forget finished operations after a day, as ARM does; their resources keep their state."""
        cutoff = self._now() - OPERATION_RETENTION
        for op in self._store.list(Operation):
            if op.status.done and op.end_time and datetime.fromisoformat(op.end_time) < cutoff:
                self._store.delete(op)

    def prune_activity(self, retention: timedelta) -> int:
        """Forget activity log entries older than ``retention`` (at most once per
        ACTIVITY_PRUNE_INTERVAL); how many went."""
        now = self._now()
        if self._activity_pruned_at is not None and now - self._activity_pruned_at < ACTIVITY_PRUNE_INTERVAL:
            return 0
        self._activity_pruned_at = now
        gone = self._store.prune_activity(render_event_time(now - retention))
        if gone:
            log.info("activity log: forgot %d entries older than %s", gone, retention)
        return gone
