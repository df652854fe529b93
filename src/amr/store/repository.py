"""The store: our model records in SQLite, with compare-and-swap updates.

Every write of an existing record names the record it read (``replace(old, new)``): if someone else
changed it in between, the write fails with ConcurrencyError instead of losing their change.
"""

from __future__ import annotations

import builtins
import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from amr.errors import ConcurrencyError, StoreError
from amr.model.activity import ActivityEvent, ActivityQuery
from amr.model.alerts import ActionGroup, MetricAlert
from amr.model.events import DatabaseEvent, NodePids
from amr.model.resources import Cluster, Database, FirewallRule, Operation, ResourceGroup
from amr.store import activity
from amr.store.codec import from_record, to_record
from amr.store.schema import upgrade_schema

Record = (
    ResourceGroup
    | Cluster
    | Database
    | Operation
    | FirewallRule
    | DatabaseEvent
    | NodePids
    | MetricAlert
    | ActionGroup
)
R = TypeVar(
    "R",
    ResourceGroup,
    Cluster,
    Database,
    Operation,
    FirewallRule,
    DatabaseEvent,
    NodePids,
    MetricAlert,
    ActionGroup,
)

_KINDS: dict[type, str] = {
    ResourceGroup: "group",
    Cluster: "cluster",
    Database: "database",
    Operation: "operation",
    FirewallRule: "firewall",
    # A database's history, keyed <database key>/events/<time>-<kind>-<node> (time order by prefix).
    DatabaseEvent: "event",
    NodePids: "nodepids",
    MetricAlert: "metricalert",
    ActionGroup: "actiongroup",
}


def record_key(obj: Record) -> str:
    return obj.id if isinstance(obj, Operation) else obj.key


class Store(Protocol):
    """What the API and the reconciler need from a store."""

    def get(self, kind: type[R], key: str) -> R | None: ...

    def list(self, kind: type[R], prefix: str = "") -> list[R]: ...

    def insert(self, obj: Record) -> None: ...

    def replace(self, old: Record, new: Record) -> None: ...

    def delete(self, obj: Record) -> None: ...

    def add_activity(self, event: ActivityEvent) -> None: ...

    def list_activity(
        self, query: ActivityQuery, after: tuple[str, int] | None = None, limit: int = 200
    ) -> builtins.list[tuple[int, ActivityEvent]]: ...

    def prune_activity(self, before: str) -> int: ...


# The table as migrations/versions/0001_records.py creates it.
_metadata = sa.MetaData()
_records = sa.Table(
    "records",
    _metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)


def _encode(obj: Record) -> str:
    return json.dumps(to_record(obj), sort_keys=True)


class SqlStore:
    """The SQLite (or any SQLAlchemy URL) store."""

    def __init__(self, url: str) -> None:
        try:
            self._engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            with self._engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            upgrade_schema(self._engine)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the store at {url}: {e}") from e
        self._lock = threading.Lock()

    @classmethod
    def open_file(cls, path: Path) -> SqlStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        store = cls(f"sqlite:///{path}")
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if extra.exists():
                os.chmod(extra, 0o600)
        return store

    def get(self, kind: type[R], key: str) -> R | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(_records.c.data).where(_records.c.kind == _KINDS[kind], _records.c.key == key)
            ).first()
        return None if row is None else from_record(kind, json.loads(row[0]))

    def list(self, kind: type[R], prefix: str = "") -> list[R]:
        query = sa.select(_records.c.data).where(_records.c.kind == _KINDS[kind])
        if prefix:
            query = query.where(_records.c.key.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_records.c.key)).all()
        return [from_record(kind, json.loads(r[0])) for r in rows]

    def insert(self, obj: Record) -> None:
        try:
            with self._lock, self._engine.begin() as conn:
                conn.execute(
                    _records.insert().values(kind=_KINDS[type(obj)], key=record_key(obj), data=_encode(obj))
                )
        except IntegrityError as e:
            raise ConcurrencyError(f"{record_key(obj)} already exists") from e
        except SQLAlchemyError as e:
            raise StoreError(f"cannot write {record_key(obj)}: {e}") from e

    def replace(self, old: Record, new: Record) -> None:
        self._swap(old, _encode(new), record_key(new), new)

    def delete(self, obj: Record) -> None:
        self._swap(obj, None, record_key(obj))

    def _swap(self, old: Record, data: str | None, key: str, new: Record | None = None) -> None:
        where = (
            (_records.c.kind == _KINDS[type(old)])
            & (_records.c.key == record_key(old))
            & (_records.c.data == _encode(old))
        )
        try:
            with self._lock, self._engine.begin() as conn:
                stmt: Any = (
                    _records.delete().where(where)
                    if data is None
                    else _records.update().where(where).values(data=data, key=key)
                )
                if conn.execute(stmt).rowcount != 1:
                    raise ConcurrencyError(f"{record_key(old)} changed since it was read")
                if isinstance(old, Operation) and isinstance(new, Operation):
                    # Every path that ends an operation (the reconciler's passes, rolling restarts,
                    # flushes, the test fakes) goes through here, so the activity log's end entry
                    # is written with the operation's end, in the same transaction.
                    activity.record_operation_end(conn, old, new)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot write {key}: {e}") from e

    def add_activity(self, event: ActivityEvent) -> None:
        """Add an entry to the activity log."""
        try:
            with self._lock, self._engine.begin() as conn:
                activity.insert_event(conn, event)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot write activity log entry {event.event_data_id}: {e}") from e

    def list_activity(
        self, query: ActivityQuery, after: tuple[str, int] | None = None, limit: int = 200
    ) -> builtins.list[tuple[int, ActivityEvent]]:
        """Activity log entries matching ``query``, newest first, after the entry ``after`` (its
        time and sequence number), each with its sequence number (for the next page's ``after``)."""
        try:
            with self._engine.connect() as conn:
                return activity.select_events(conn, query, after, limit)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot read the activity log: {e}") from e

    def prune_activity(self, before: str) -> int:
        """Forget activity log entries older than ``before``; how many went."""
        try:
            with self._lock, self._engine.begin() as conn:
                return activity.delete_events_before(conn, before)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot prune the activity log: {e}") from e

    def close(self) -> None:
        self._engine.dispose()
