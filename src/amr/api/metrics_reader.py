"""The API's read of the metric store (``AMR_HOME/monitor/metrics.db``, which `amr monitord` writes):
opened at the first metrics request, read in a worker thread so that a long query does not hold up
other requests, one query at a time on its one connection."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from amr.logic.metrics.aggregate import MINUTE, Minute, TimeSeries, plan_minutes, plan_time_series
from amr.logic.metrics.azure import MetricDefinition
from amr.logic.metrics.query import MetricsQuery, choose_window
from amr.monitor.main import STORE_FILE_NAME
from amr.monitor.store import MetricStore, Series
from amr.settings import Settings


def read_minutes(
    store: MetricStore, resource: str, metric: str, start: int, end: int
) -> dict[tuple[str, ...], list[Minute]]:
    """Every series of ``metric`` of ``resource`` (its dimension values: its minutes in [start,
    end)): the rolled-up minutes, then the raw points of the minutes not rolled up yet."""
    found: dict[tuple[str, ...], list[Minute]] = {}
    for name, dimensions in store.series(resource):
        if name != metric:
            continue
        key = Series(resource, name, dimensions)
        minutes = [
            Minute(r.minute, r.count, r.total, r.minimum, r.maximum) for r in store.rollups(key, start, end)
        ]
        after = minutes[-1].minute + MINUTE if minutes else start
        minutes += plan_minutes(store.points(key, max(after, start), end))
        found[dimensions] = minutes
    return found


def query_store(
    store: MetricStore, resource: str, query: MetricsQuery
) -> list[tuple[MetricDefinition, list[TimeSeries]]]:
    """Each metric of ``query`` with its answer series, from ``store``."""
    first, end = choose_window(query.start, query.end, query.grain)
    return [
        (m, plan_time_series(query, m, read_minutes(store, resource, m.name, first, end)))
        for m in query.metrics
    ]


@dataclass
class MetricsReader:
    """The metric store of ``settings``' AMR_HOME, opened once, queried one request at a time."""

    settings: Settings
    _store: MetricStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _query(self, resource: str, query: MetricsQuery) -> list[tuple[MetricDefinition, list[TimeSeries]]]:
        with self._lock:
            if self._store is None:
                m = self.settings.monitor
                self._store = MetricStore(
                    self.settings.monitor_dir / STORE_FILE_NAME,
                    m.raw_retention_hours,
                    m.rollup_retention_days,
                )
            return query_store(self._store, resource, query)

    async def query(
        self, resource: str, query: MetricsQuery
    ) -> list[tuple[MetricDefinition, list[TimeSeries]]]:
        """The answer series of ``query`` for the cache ``resource`` (its id in lower case)."""
        return await asyncio.to_thread(self._query, resource, query)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
