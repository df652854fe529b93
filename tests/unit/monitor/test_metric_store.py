"""The metric store (amr.monitor.store): a private SQLite file in WAL mode; raw points, one-minute
rollups, retention, and gaps that read as no data."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from amr.errors import MetricStoreError
from amr.monitor.store import MetricStore, Series

DB = "/subscriptions/s/resourcegroups/g/providers/microsoft.cache/redisenterprise/c1"
T0 = 1_700_000_000 - 1_700_000_000 % 3600  # on an hour


def test_the_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "monitor" / "metrics.db")
    store.write(T0, {DB: {("cachehits", ()): 1}})
    assert stat.S_IMODE((tmp_path / "monitor" / "metrics.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "monitor").stat().st_mode) == 0o700
    with sqlite3.connect(tmp_path / "monitor" / "metrics.db") as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_points_series_and_dimensions(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db")
    for i in range(3):
        store.write(T0 + 10 * i, {DB: {("cachehits", ()): i, ("cacheRead", ("node-0",)): 100.0 * i}})
    assert store.points(Series(DB, "cachehits")) == [(T0, 0.0), (T0 + 10, 1.0), (T0 + 20, 2.0)]
    assert store.points(Series(DB, "cacheRead", ("node-0",)), start=T0 + 10, end=T0 + 20) == [
        (T0 + 10, 100.0)
    ]
    assert store.series(DB) == [("cacheRead", ("node-0",)), ("cachehits", ())]
    assert store.points(Series("other", "cachehits")) == []


def test_a_minute_is_rolled_up_when_it_is_over(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db")
    for i, v in enumerate([3, 1, 4, 1, 5, 9]):
        store.write(T0 + 10 * i, {DB: {("cachehits", ()): v}})
    assert store.rollups(Series(DB, "cachehits")) == []  # the minute is not over yet
    store.write(T0 + 60, {DB: {("cachehits", ()): 2}})
    [minute] = store.rollups(Series(DB, "cachehits"))
    assert (minute.minute, minute.count, minute.total, minute.minimum, minute.maximum) == (T0, 6, 23, 1, 9)
    # A store opened again (the collector restarted) carries on from where it was.
    store.close()
    again = MetricStore(tmp_path / "m.db")
    again.write(T0 + 130, {DB: {("cachehits", ()): 7}})
    assert [(r.minute, r.count, r.total) for r in again.rollups(Series(DB, "cachehits"))] == [
        (T0, 6, 23),
        (T0 + 60, 1, 2),
    ]


def test_a_gap_has_no_rows(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db")
    store.write(T0, {DB: {("cachehits", ()): 1}})
    store.write(T0 + 600, {DB: {("cachehits", ()): 1}})  # amr was stopped for ten minutes
    store.write(T0 + 660, {DB: {("cachehits", ()): 1}})
    assert [r.minute for r in store.rollups(Series(DB, "cachehits"))] == [T0, T0 + 600]
    assert store.points(Series(DB, "cachehits"), start=T0 + 1, end=T0 + 600) == []


def test_retention(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db", raw_retention_hours=1, rollup_retention_days=1 / 24 * 2)
    store.write(T0, {DB: {("cachehits", ()): 1}})
    store.write(T0 + 3600, {DB: {("cachehits", ()): 1}})  # the first point is an hour old: kept
    assert len(store.points(Series(DB, "cachehits"))) == 2
    store.write(T0 + 3660, {DB: {("cachehits", ()): 1}})
    assert [t for t, _ in store.points(Series(DB, "cachehits"))] == [T0 + 3600, T0 + 3660]
    assert len(store.rollups(Series(DB, "cachehits"))) == 2
    store.write(T0 + 3 * 3600, {DB: {("cachehits", ()): 1}})  # rollups older than two hours go
    assert [r.minute for r in store.rollups(Series(DB, "cachehits"))] == [T0 + 3600, T0 + 3660]


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "m.db").mkdir()
    with pytest.raises(MetricStoreError, match="cannot open the metric store"):
        MetricStore(tmp_path / "m.db")
