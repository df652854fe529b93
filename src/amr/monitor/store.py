"""The metric store: one SQLite file, ``AMR_HOME/monitor/metrics.db`` (mode 0600, WAL), that
`amr monitord` writes and everything that shows metrics reads (the Azure Monitor API, Prometheus and
alerts, later).

Why SQLite: it is embedded (no server to run and keep alive, which the collector must not depend
on), in Python's standard library, safe for one writer and many readers across processes in WAL
mode, and its ``WITHOUT ROWID`` tables keep a point at about 20 bytes. A series is one metric with
one set of dimension values for one database; points and rollups name their series by a small
integer.

- ``points``: raw values, one per sample interval, at the interval's end (whole seconds), kept
  ``monitor.raw_retention_hours``.
- ``rollups``: one row per series and minute (count, sum, minimum, maximum of the minute's points),
  made when the minute is over, kept ``monitor.rollup_retention_days``: any Azure aggregation of a
  longer interval is computed from them.

A time without points is a gap (amr was stopped): it has no rows, so it reads as no data, never as
zeros.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amr.errors import MetricStoreError

MINUTE = 60
DIMENSION_SEPARATOR = "|"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    resource TEXT NOT NULL,
    metric TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    UNIQUE (resource, metric, dimensions)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL,
    t INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    series INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    total REAL NOT NULL,
    minimum REAL NOT NULL,
    maximum REAL NOT NULL,
    PRIMARY KEY (series, minute)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Series:
    """Which series: a database (its resource id), a metric, and the metric's dimension values."""

    resource: str
    metric: str
    dimensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rollup:
    """One series' minute: how many points, their sum, minimum and maximum."""

    minute: int
    count: int
    total: float
    minimum: float
    maximum: float


def _dimensions(values: tuple[str, ...]) -> str:
    return DIMENSION_SEPARATOR.join(values)


class MetricStore:
    """The store's file, open for one process (the collector writes; readers only read)."""

    def __init__(
        self, path: Path, raw_retention_hours: float = 24.0, rollup_retention_days: float = 30.0
    ) -> None:
        self.path = path
        self.raw_retention = int(raw_retention_hours * 3600)
        self.rollup_retention = int(rollup_retention_days * 86400)
        self._series: dict[tuple[str, str, str], int] = {}
        self._rolled_until: int | None = None  # minutes before this one are rolled up
        self._pruned_hour = -1
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Private from its first byte: sqlite would create it with the umask's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last commit
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise MetricStoreError(f"cannot open the metric store {path}: {e}") from e

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise MetricStoreError(f"metric store {self.path}: {e}") from e

    def _series_id(self, db: sqlite3.Connection, resource: str, metric: str, dimensions: str) -> int:
        key = (resource, metric, dimensions)
        found = self._series.get(key)
        if found is None:
            db.execute("INSERT OR IGNORE INTO series (resource, metric, dimensions) VALUES (?, ?, ?)", key)
            row = db.execute(
                "SELECT id FROM series WHERE resource = ? AND metric = ? AND dimensions = ?", key
            ).fetchone()
            found = self._series[key] = int(row[0])
        return found

    def write(
        self, at: float, values_by_resource: Mapping[str, Mapping[tuple[str, tuple[str, ...]], float]]
    ) -> None:
        """Record one sample's values of every database (``at``: the interval's end), roll up the
        minutes that are over and drop what is past retention, in one transaction."""
        t = int(round(at))
        with self._transaction() as db:
            rows = [
                (self._series_id(db, resource, metric, _dimensions(dims)), t, float(value))
                for resource, values in values_by_resource.items()
                for (metric, dims), value in values.items()
            ]
            db.executemany("INSERT OR REPLACE INTO points (series, t, value) VALUES (?, ?, ?)", rows)
            if self._roll_up(db, t - t % MINUTE):
                self._prune(db, t)

    def _roll_up(self, db: sqlite3.Connection, current_minute: int) -> bool:
        """Roll up every minute before ``current_minute`` not rolled up yet (idempotent: a minute
        rolled up again, after a restart, gets the same row)."""
        if self._rolled_until is None:
            row = db.execute("SELECT max(minute) FROM rollups").fetchone()
            if row[0] is not None:
                self._rolled_until = int(row[0]) + MINUTE
            else:
                first = db.execute("SELECT min(t) FROM points").fetchone()[0]
                self._rolled_until = int(first) - int(first) % MINUTE if first is not None else current_minute
        start = self._rolled_until
        if start >= current_minute:
            return False
        db.execute(
            "INSERT OR REPLACE INTO rollups (series, minute, count, total, minimum, maximum) "
            "SELECT series, t - t % 60, count(*), sum(value), min(value), max(value) FROM points "
            "WHERE t >= ? AND t < ? GROUP BY series, t - t % 60",
            (start, current_minute),
        )
        self._rolled_until = current_minute
        return True

    def _prune(self, db: sqlite3.Connection, now: int) -> None:
        """Drop what is past retention: raw points once a minute, rollups once an hour (each is a
        scan of its table; an index by time would cost as much space again)."""
        db.execute("DELETE FROM points WHERE t < ?", (now - self.raw_retention,))
        if now // 3600 != self._pruned_hour:
            db.execute("DELETE FROM rollups WHERE minute < ?", (now - self.rollup_retention,))
            self._pruned_hour = now // 3600

    # -- reading ------------------------------------------------------------------------------------

    def series(self, resource: str) -> list[tuple[str, tuple[str, ...]]]:
        """The (metric, dimension values) of every series a database has."""
        rows = self._db.execute(
            "SELECT metric, dimensions FROM series WHERE resource = ? ORDER BY metric, dimensions",
            (resource,),
        ).fetchall()
        return [(m, tuple(d.split(DIMENSION_SEPARATOR)) if d else ()) for m, d in rows]

    def _rows(self, columns: str, table: str, time: str, key: Series, start: float, end: float) -> list[Any]:
        series = self._db.execute(
            "SELECT id FROM series WHERE resource = ? AND metric = ? AND dimensions = ?",
            (key.resource, key.metric, _dimensions(key.dimensions)),
        ).fetchone()
        if series is None:
            return []
        # table, columns and time are this module's constants, never input.
        query = (
            f"SELECT {columns} FROM {table} WHERE series = ? AND {time} >= ? AND {time} < ? ORDER BY {time}"
        )
        return list(self._db.execute(query, (series[0], int(start), int(end))))

    def points(self, key: Series, start: float = 0, end: float = 2**62) -> list[tuple[int, float]]:
        """A series' raw points with ``start <= t < end``, in time order."""
        return [(int(t), float(v)) for t, v in self._rows("t, value", "points", "t", key, start, end)]

    def rollups(self, key: Series, start: float = 0, end: float = 2**62) -> list[Rollup]:
        """A series' minutes with ``start <= minute < end``, in time order."""
        rows = self._rows("minute, count, total, minimum, maximum", "rollups", "minute", key, start, end)
        return [Rollup(int(m), int(c), float(t), float(lo), float(hi)) for m, c, t, lo, hi in rows]

    def size_bytes(self) -> int:
        """The file's size with its WAL."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
