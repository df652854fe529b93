"""SqlStore: records of our model with compare-and-swap writes."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.errors import ConcurrencyError
from amr.model.enums import EvictionPolicy, OperationStatus, ProvisioningState, Toggle
from amr.model.node import Role
from amr.model.resources import (
    Cluster,
    Database,
    NodeAssignment,
    Operation,
    OperationError,
    Persistence,
    ResourceGroup,
    lookup_key,
)
from amr.store.repository import SqlStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.open_file(tmp_path / "home" / "amr.db")
    yield s
    s.close()


def cluster(group: str = "rg", name: str = "C1", **changes: object) -> Cluster:
    return dataclasses.replace(
        Cluster("sub", group, name, "eastus", "Balanced_B0", Toggle.ENABLED, tags={"a": "b"}), **changes
    )


def test_round_trip_of_every_kind(store: SqlStore) -> None:
    group = ResourceGroup("sub", "RG", "eastus", {"t": "v"})
    db = Database(
        "sub", "RG", "C1", "d1", 10000, "pk", "sk",
        eviction_policy=EvictionPolicy.NO_EVICTION,
        persistence=Persistence(aof_enabled=True),
        nodes=(NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500), NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501)),
    )  # fmt: skip
    op = Operation("op1", "sub", "eastus", db.id, "create", OperationStatus.FAILED, "t0", "t1",
                   OperationError("Boom", "it broke"))  # fmt: skip
    c = cluster("RG")
    for record in (group, c, db, op):
        store.insert(record)
    assert store.get(ResourceGroup, "sub/rg") == group
    assert store.get(Cluster, "sub/rg/c1") == c
    assert store.get(Database, lookup_key("sub", "rg", "c1", "default")) == db
    assert store.get(Operation, "op1") == op
    assert store.get(Cluster, "sub/rg/missing") is None
    assert store.get(Database, "sub/rg/c1") is None  # kinds are separate


def test_insert_twice_is_a_conflict(store: SqlStore) -> None:
    store.insert(cluster())
    with pytest.raises(ConcurrencyError):
        store.insert(cluster(location="westus"))


def test_list_and_prefix(store: SqlStore) -> None:
    for group, name in (("rg1", "b"), ("rg1", "a"), ("rg2", "a"), ("rg_1", "x")):
        store.insert(cluster(group, name))
    assert [c.name for c in store.list(Cluster)] == ["a", "b", "a", "x"]
    assert [(c.resource_group, c.name) for c in store.list(Cluster, "sub/rg1/")] == [
        ("rg1", "a"),
        ("rg1", "b"),
    ]
    # The prefix is literal: "_" is not a LIKE wildcard.
    assert [c.resource_group for c in store.list(Cluster, "sub/rg_")] == ["rg_1"]
    assert store.list(Cluster, "other/") == []
    assert store.list(Database) == []


def test_replace_with_current_record(store: SqlStore) -> None:
    old = cluster()
    store.insert(old)
    new = dataclasses.replace(old, provisioning_state=ProvisioningState.SUCCEEDED)
    store.replace(old, new)
    assert store.get(Cluster, old.key) == new


def test_replace_with_stale_record_raises(store: SqlStore) -> None:
    old = cluster()
    store.insert(old)
    first = dataclasses.replace(old, tags={"writer": "1"})
    store.replace(old, first)
    with pytest.raises(ConcurrencyError):
        store.replace(old, dataclasses.replace(old, tags={"writer": "2"}))
    assert store.get(Cluster, old.key) == first


def test_replace_or_delete_of_missing_record_raises(store: SqlStore) -> None:
    with pytest.raises(ConcurrencyError):
        store.replace(cluster(), cluster(tags={}))
    with pytest.raises(ConcurrencyError):
        store.delete(cluster())


def test_delete_needs_the_current_record(store: SqlStore) -> None:
    old = cluster()
    store.insert(old)
    store.replace(old, dataclasses.replace(old, tags={}))
    with pytest.raises(ConcurrencyError):
        store.delete(old)
    store.delete(dataclasses.replace(old, tags={}))
    assert store.get(Cluster, old.key) is None


def test_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "amr.db"
    s = SqlStore.open_file(path)
    try:
        s.insert(cluster())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        s.close()
    reopened = SqlStore.open_file(path)
    try:
        assert reopened.get(Cluster, cluster().key) == cluster()
        for extra in (path.with_name("amr.db-wal"), path.with_name("amr.db-shm")):
            if extra.exists():
                assert stat.S_IMODE(extra.stat().st_mode) == 0o600
    finally:
        reopened.close()


def test_a_new_store_is_migrated_to_the_latest_revision(tmp_path: Path) -> None:
    import sqlite3

    store = SqlStore.open_file(tmp_path / "amr.db")
    store.close()
    SqlStore.open_file(tmp_path / "amr.db").close()  # reopening applies nothing twice
    with sqlite3.connect(tmp_path / "amr.db") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [("0002",)]
