"""The activity log's table: entries in time order, with the columns its queries filter on.

Filter columns hold lower-cased text, since ARM names and ids compare without regard to case; the
entry itself is kept whole in ``data`` (the store's record format, ``amr.store.codec``).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from amr.logic.arm.activity import choose_resource_provider, plan_operation_end
from amr.model.activity import ActivityEvent, ActivityQuery, ActivityStatus
from amr.model.enums import OperationStatus
from amr.model.resources import Operation
from amr.store.codec import from_record, to_record

# The table as migrations/versions/0002_activity_log.py creates it.
_metadata = sa.MetaData()
activity_log = sa.Table(
    "activity_log",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_data_id", sa.String(128), nullable=False, unique=True),
    sa.Column("event_timestamp", sa.String(32), nullable=False),
    sa.Column("operation_id", sa.String(128), nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=False),
    sa.Column("resource_group", sa.String(128), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("resource_provider", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("caller", sa.String(256), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
_t = activity_log.c


def insert_event(conn: sa.Connection, event: ActivityEvent) -> None:
    """Add an entry (one whose id is already there is kept as it was: entries never change)."""
    exists = conn.execute(sa.select(_t.event_data_id).where(_t.event_data_id == event.event_data_id)).first()
    if exists is not None:
        return
    conn.execute(
        activity_log.insert().values(
            event_data_id=event.event_data_id,
            event_timestamp=event.event_timestamp,
            operation_id=event.operation_id,
            correlation_id=event.correlation_id.lower(),
            resource_group=event.resource_group.lower(),
            resource_id=event.resource_id.lower(),
            resource_provider=choose_resource_provider(event.operation_name).lower(),
            status=event.status.value.lower(),
            caller=event.caller.lower(),
            data=json.dumps(to_record(event), sort_keys=True),
        )
    )


def select_events(
    conn: sa.Connection, query: ActivityQuery, after: tuple[str, int] | None, limit: int
) -> list[tuple[int, ActivityEvent]]:
    """Up to ``limit`` entries matching ``query``, newest first (by time, then by the order they
    were written), after the entry ``after`` (its time and sequence number) of a previous page; each
    with its sequence number."""
    where: list[Any] = [_t.event_timestamp >= query.start, _t.event_timestamp <= query.end]
    for column, value in (
        (_t.resource_group, query.resource_group),
        (_t.resource_id, query.resource_id),
        (_t.resource_provider, query.resource_provider),
        (_t.correlation_id, query.correlation_id),
        (_t.status, query.status),
        (_t.caller, query.caller),
    ):
        if value is not None:
            where.append(column == value.lower())
    if after is not None:
        stamp, seq = after
        where.append(sa.or_(_t.event_timestamp < stamp, sa.and_(_t.event_timestamp == stamp, _t.seq < seq)))
    rows = conn.execute(
        sa.select(_t.seq, _t.data)
        .where(*where)
        .order_by(_t.event_timestamp.desc(), _t.seq.desc())
        .limit(limit)
    ).all()
    return [(int(r[0]), from_record(ActivityEvent, json.loads(r[1]))) for r in rows]


def delete_events_before(conn: sa.Connection, cutoff: str) -> int:
    """Forget the entries older than ``cutoff`` (an entry time); how many went."""
    return int(conn.execute(activity_log.delete().where(_t.event_timestamp < cutoff)).rowcount or 0)


def record_operation_end(conn: sa.Connection, old: Operation, new: Operation) -> None:
    """When a long-running operation ends (``old`` in progress, ``new`` done), the entry that says
    so, beside the Accepted entry of the request that began it (none: nothing to record)."""
    if old.status.done or not new.status.done:
        return
    row = conn.execute(
        sa.select(_t.data)
        .where(_t.operation_id == new.id, _t.status == ActivityStatus.ACCEPTED.value.lower())
        .order_by(_t.event_timestamp.desc(), _t.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return
    accepted = from_record(ActivityEvent, json.loads(row[0]))
    succeeded = new.status is OperationStatus.SUCCEEDED
    insert_event(conn, plan_operation_end(accepted, succeeded, new.error, new.end_time or ""))
