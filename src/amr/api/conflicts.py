"""409 Conflict for operations that must not overlap a restart: a restart (or upgrade) waits for every
other operation on its database and cache, and nothing changes a database while it restarts."""

from __future__ import annotations

from collections.abc import Iterable

from amr.api.context import Request
from amr.errors import Conflict
from amr.logic.operations.rolling import RESTART_ACTIONS, choose_conflicting_operation, describe_action
from amr.model.enums import ResourceState
from amr.model.resources import Cluster, Database, Operation


def refuse_while_restarting(req: Request, databases: Iterable[Database], change: str) -> None:
    """Answer 409 (and change nothing) when a restart or upgrade of one of ``databases`` is running:
    ``change`` (say "update the database") would race with its node restarts and switchovers."""
    operations = req.services.store.list(Operation)
    for db in databases:
        op = choose_conflicting_operation(operations, (db.id,), RESTART_ACTIONS)
        if op is not None:
            raise Conflict(
                f"Cannot {change}: a {describe_action(op.action)} of database '{db.name}' of cache "
                f"'{db.cluster_name}' is running (operation {op.id}, started {op.start_time}). Wait for "
                "it to finish and retry."
            )


def refuse_restart_while_busy(req: Request, cluster: Cluster, db: Database, action: str) -> None:
    """Answer 409 (and change nothing) when the database or its cache has any operation running
    (create, update, delete, flush, another restart): a restart starts only from a settled database."""
    what = describe_action(action)
    for kind, name, state in (
        ("cache", cluster.name, cluster.provisioning_state),
        ("database", db.name, db.provisioning_state),
    ):
        if state.busy:
            raise Conflict(
                f"Cannot start a {what}: the {kind} '{name}' is {state.value.lower()}. Wait for that "
                "operation to finish and retry."
            )
    if db.resource_state is ResourceState.CREATE_FAILED:
        raise Conflict(
            f"Cannot start a {what}: the database '{db.name}' could not be created, so it has no nodes to "
            "restart. Delete it and create it again."
        )
    op = choose_conflicting_operation(req.services.store.list(Operation), (db.id, cluster.id))
    if op is not None:
        target = "cache" if op.resource_id.lower() == cluster.id.lower() else "database"
        raise Conflict(
            f"Cannot start a {what}: a {describe_action(op.action)} of the {target} is running "
            f"(operation {op.id}, started {op.start_time}). Wait for it to finish and retry."
        )
