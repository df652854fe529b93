"""The activity log in the SqlStore: entries newest first with their filters and pages, pruning by
age, an operation's end entry written when the operation ends, and a store of the first schema
revision migrated with its records kept."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from amr.model.activity import ActivityEvent, ActivityQuery, ActivityStatus
from amr.model.enums import OperationStatus
from amr.model.resources import Operation, OperationError, ResourceGroup
from amr.store.repository import SqlStore
from amr.store.schema import MIGRATIONS
from amr.testing.activity import sample_event

DAY = ActivityQuery("2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.open_file(tmp_path / "amr.db")
    yield s
    s.close()


def entry(event_id: str, minute: int, **changes: object) -> ActivityEvent:
    stamp = f"2026-01-01T00:{minute:02d}:00.000000Z"
    return sample_event(**{"event_data_id": event_id, "event_timestamp": stamp, **changes})


def ids(
    store: SqlStore, query: ActivityQuery = DAY, after: tuple[str, int] | None = None, limit: int = 50
) -> list[str]:
    return [e.event_data_id for _, e in store.list_activity(query, after, limit)]


def test_entries_come_newest_first_then_in_the_order_written(store: SqlStore) -> None:
    store.add_activity(entry("b", 1))
    store.add_activity(entry("a", 1, status=ActivityStatus.SUCCEEDED))
    store.add_activity(entry("c", 0))
    store.add_activity(entry("c", 5))  # an id already there is kept as it was
    assert ids(store) == ["a", "b", "c"]
    assert store.list_activity(DAY)[-1][1] == entry("c", 0)


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({"resource_group": "rg"}, True),
        ({"resource_group": "other"}, False),
        ({"resource_id": entry("x", 0).resource_id.upper()}, True),
        ({"resource_provider": "microsoft.cache"}, True),
        ({"resource_provider": "Microsoft.Resources"}, False),
        ({"correlation_id": "CORR-1"}, True),
        ({"status": "started"}, True),
        ({"status": "Failed"}, False),
        ({"caller": "app-1"}, True),
        ({"start": "2026-01-01T00:03:00.000001Z"}, False),
        ({"end": "2026-01-01T00:02:59.999999Z"}, False),
        ({"start": "2026-01-01T00:03:00.000000Z", "end": "2026-01-01T00:03:00.000000Z"}, True),
    ],
)
def test_filters_match_without_regard_to_case(store: SqlStore, changes: dict[str, str], found: bool) -> None:
    store.add_activity(entry("x", 3))
    assert ids(store, dataclasses.replace(DAY, **changes)) == (["x"] if found else [])


def test_pages_go_on_after_the_last_entry_of_the_previous_one(store: SqlStore) -> None:
    for i, minute in enumerate((1, 1, 1, 2, 0)):
        store.add_activity(entry(f"e{i}", minute))
    first = store.list_activity(DAY, None, 2)
    assert [e.event_data_id for _, e in first] == ["e3", "e2"]
    seq, last = first[-1]
    assert ids(store, DAY, (last.event_timestamp, seq), 2) == ["e1", "e0"]
    assert ids(store, DAY, ("2026-01-01T00:01:00.000000Z", 1), 2) == ["e4"]


def test_prune_forgets_entries_older_than_the_cutoff(store: SqlStore) -> None:
    for minute in range(5):
        store.add_activity(entry(f"e{minute}", minute))
    assert store.prune_activity("2026-01-01T00:03:00.000000Z") == 3
    assert ids(store) == ["e4", "e3"]


def _operation(**changes: object) -> Operation:
    return dataclasses.replace(
        Operation("op-1", "sub", "eastus", entry("x", 0).resource_id, "flush"), **changes
    )


@pytest.mark.parametrize(
    ("status", "error", "wanted", "wanted_error"),
    [
        (OperationStatus.SUCCEEDED, None, ActivityStatus.SUCCEEDED, None),
        (OperationStatus.FAILED, OperationError("NodeFailed", "d1-0-0 did not start"), ActivityStatus.FAILED,
         OperationError("NodeFailed", "d1-0-0 did not start")),
    ],
)  # fmt: skip
def test_an_operation_that_ends_writes_the_end_entry_of_its_accepted_request(
    store: SqlStore,
    status: OperationStatus,
    error: OperationError | None,
    wanted: ActivityStatus,
    wanted_error: OperationError | None,
) -> None:
    op = _operation()
    store.insert(op)
    store.add_activity(entry("req", 0))
    store.add_activity(
        entry("req-accepted", 0, status=ActivityStatus.ACCEPTED, operation_id="op-1", http_status=202)
    )
    running = dataclasses.replace(op, message="halfway")
    store.replace(op, running)  # still in progress: nothing to record
    assert ids(store) == ["req-accepted", "req"]
    done = dataclasses.replace(running, status=status, end_time="2026-01-01T00:07:00+00:00", error=error)
    store.replace(running, done)
    end = store.list_activity(DAY)[0][1]
    assert (end.event_data_id, end.status, end.error) == ("op-1-end", wanted, wanted_error)
    assert (end.correlation_id, end.caller, end.event_timestamp) == (
        "Corr-1",
        "App-1",
        "2026-01-01T00:07:00.000000Z",
    )
    store.replace(done, dataclasses.replace(done, message="again"))  # done already: no second end
    assert len(ids(store)) == 3


def test_an_operation_without_an_accepted_entry_records_nothing(store: SqlStore) -> None:
    op = _operation()
    store.insert(op)
    store.replace(
        op, dataclasses.replace(op, status=OperationStatus.SUCCEEDED, end_time="2026-01-01T00:07:00+00:00")
    )
    assert ids(store) == []


def test_a_store_of_the_first_revision_is_migrated_with_its_records(tmp_path: Path) -> None:
    path = tmp_path / "amr.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "insert into records (kind, key, data) values ('group', 'sub/rg', "
            '\'{"subscription_id": "sub", "name": "rg", "location": "eastus"}\')'
        )
    engine.dispose()
    store = SqlStore.open_file(path)
    try:
        assert store.get(ResourceGroup, "sub/rg") == ResourceGroup("sub", "rg", "eastus")
        store.add_activity(entry("x", 0))
        assert ids(store) == ["x"]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [("0002",)]
