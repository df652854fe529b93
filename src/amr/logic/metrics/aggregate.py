"""A metrics query's answer from the store's minutes: each metric's series grouped by the dimensions
the query splits on, their minutes added up into the query's time grain, every bucket of the time
span present (a bucket without samples has a time stamp and no value: no data, never zero), and
the groups sorted and cut as ``orderby`` and ``top`` say.

Aggregations follow Azure Monitor's pre-aggregated semantics: a bucket's Count is how many samples it
holds, Total their sum, Average the sum over the count, Minimum and Maximum the extremes; series that
are not split (several nodes of one ``InstanceId`` metric) add up the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from amr.errors import ArmError
from amr.logic.metrics.azure import MetricDefinition
from amr.logic.metrics.query import MetricsQuery, choose_window

MINUTE = 60


@dataclass(frozen=True, slots=True)
class Minute:
    """One series' samples in one minute (the store's rollup)."""

    minute: int
    count: int
    total: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class TimeSeries:
    """One answer series: its dimension values (empty when not split) and one value per bucket,
    each ``(bucket start, {aggregation: value})`` with an empty mapping for no data."""

    dimensions: tuple[tuple[str, str], ...]
    data: tuple[tuple[int, Mapping[str, float]], ...]


def plan_minutes(points: Iterable[tuple[int, float]]) -> list[Minute]:
    """Raw points (time, value) rolled up by minute, as the store rolls up a minute that is over."""
    minutes: dict[int, list[float]] = {}
    for t, value in points:
        minutes.setdefault(t - t % MINUTE, []).append(value)
    return [Minute(m, len(v), sum(v), min(v), max(v)) for m, v in sorted(minutes.items())]


def choose_aggregations(query: MetricsQuery, metric: MetricDefinition) -> tuple[str, ...]:
    """The aggregations answered for ``metric``: those asked for, else its primary one."""
    return query.aggregations or (metric.aggregation,)


def _split_dimensions(query: MetricsQuery, metric: MetricDefinition) -> tuple[str, ...]:
    missing = [d for d in query.dimensions if d not in metric.dimensions]
    if missing and query.validate_dimensions:
        raise ArmError(
            "BadRequest",
            f"Metric {metric.name} has no dimension {', '.join(missing)} "
            f"(its dimensions: {', '.join(metric.dimensions) or 'none'}); leave it out of $filter, "
            "query the metrics separately, or send ValidateDimensions=false.",
            400,
            "$filter",
        )
    return tuple(d for d in query.dimensions if d in metric.dimensions)


def _add(into: list[float], m: Minute) -> None:
    """Add a minute to a bucket's [count, total, minimum, maximum]."""
    if into[0] == 0:
        into[:] = [m.count, m.total, m.minimum, m.maximum]
    else:
        into[0] += m.count
        into[1] += m.total
        into[2] = min(into[2], m.minimum)
        into[3] = max(into[3], m.maximum)


def _values(bucket: list[float], aggregations: Sequence[str]) -> dict[str, float]:
    count, total, low, high = bucket
    if not count:
        return {}
    every = {"Average": total / count, "Count": count, "Maximum": high, "Minimum": low, "Total": total}
    return {a: every[a] for a in aggregations}


def plan_time_series(
    query: MetricsQuery,
    metric: MetricDefinition,
    series: Mapping[tuple[str, ...], Sequence[Minute]],
) -> list[TimeSeries]:
    """``metric``'s answer series from its stored series (dimension values in the metric's order:
    their minutes within the query's window)."""
    split = _split_dimensions(query, metric)
    positions = [metric.dimensions.index(d) for d in split]
    first, end = choose_window(query.start, query.end, query.grain)
    width = query.grain or (end - first)
    count = max(1, -(-(end - first) // width))
    groups: dict[tuple[str, ...], list[list[float]]] = {}
    if not split:
        groups[()] = [[0, 0.0, 0.0, 0.0] for _ in range(count)]
    for values, minutes in series.items():
        if len(values) != len(metric.dimensions):
            continue  # a series of another shape (an older store): not this metric's
        key = tuple(values[p] for p in positions)
        if any(
            query.dimensions[d] is not None and k not in (query.dimensions[d] or ())
            for d, k in zip(split, key, strict=True)
        ):
            continue
        buckets = groups.get(key)
        for m in minutes:
            if not first <= m.minute < end:
                continue
            if buckets is None:
                buckets = groups[key] = [[0, 0.0, 0.0, 0.0] for _ in range(count)]
            _add(buckets[(m.minute - first) // width], m)
    aggregations = choose_aggregations(query, metric)
    keys = sorted(groups)
    if split:
        keys = _order(query, keys, groups)[: query.top]
    return [
        TimeSeries(
            tuple(zip(split, key, strict=True)),
            tuple((first + i * width, _values(b, aggregations)) for i, b in enumerate(groups[key])),
        )
        for key in keys
    ]


def _order(
    query: MetricsQuery, keys: list[tuple[str, ...]], groups: Mapping[tuple[str, ...], list[list[float]]]
) -> list[tuple[str, ...]]:
    """Split groups in ``orderby``'s order of their value over the whole span (no data last);
    without ``orderby``, by dimension values."""
    if query.order_by is None:
        return keys
    aggregation, descending = query.order_by

    def whole(key: tuple[str, ...]) -> float | None:
        total: list[float] = [0, 0.0, 0.0, 0.0]
        for b in groups[key]:
            if b[0]:
                _add(total, Minute(0, int(b[0]), b[1], b[2], b[3]))
        return _values(total, (aggregation,)).get(aggregation)

    scored = [(whole(k), k) for k in keys]
    present = sorted((s for s in scored if s[0] is not None), key=lambda s: s[0] or 0.0, reverse=descending)
    return [k for _, k in present] + [k for v, k in scored if v is None]
