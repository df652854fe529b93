"""A metrics query's answer from the store's minutes (amr.logic.metrics.aggregate): buckets of the
time grain with Azure's aggregations, gaps as points without a value, splitting and selecting by
InstanceId, top and orderby."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amr.errors import ArmError
from amr.logic.metrics.aggregate import Minute, plan_minutes, plan_time_series
from amr.logic.metrics.azure import METRICS
from amr.logic.metrics.query import MetricsQuery, plan_metrics_query

T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
BY_NAME = {m.name: m for m in METRICS}


def minute(i: int, *values: float) -> Minute:
    return Minute(T0 + 60 * i, len(values), sum(values), min(values), max(values))


def query(**params: str) -> MetricsQuery:
    """A query of the ten minutes from T0."""
    return plan_metrics_query({"timespan": "2026-01-01T00:00:00Z/PT10M", **params}, T0)


def test_raw_points_roll_up_by_minute() -> None:
    assert plan_minutes([(T0 + 10, 1), (T0 + 50, 3), (T0 + 60, 5)]) == [minute(0, 1, 3), minute(1, 5)]


@pytest.mark.parametrize(
    ("aggregation", "first", "second"),
    [
        ("Total", {"total": 10}, {"total": 4}),
        ("Count", {"count": 3}, {"count": 1}),
        ("Average", {"average": 10 / 3}, {"average": 4}),
        ("Minimum", {"minimum": 1}, {"minimum": 4}),
        ("Maximum", {"maximum": 6}, {"maximum": 4}),
    ],
)
def test_aggregations_of_a_five_minute_bucket(
    aggregation: str, first: dict[str, float], second: dict[str, float]
) -> None:
    q = query(interval="PT5M", aggregation=aggregation)
    [series] = plan_time_series(q, BY_NAME["cachehits"], {(): [minute(0, 1, 3), minute(4, 6), minute(7, 4)]})
    assert series.dimensions == ()
    assert [(t - T0, dict(v)) for t, v in series.data] == [
        (0, {aggregation: next(iter(first.values()))}),
        (300, {aggregation: next(iter(second.values()))}),
    ]


def test_gaps_are_points_without_a_value_and_every_bucket_is_there() -> None:
    [series] = plan_time_series(query(), BY_NAME["setcommands"], {(): [minute(2, 7), minute(3, 0)]})
    assert len(series.data) == 10
    assert [dict(v) for _, v in series.data] == [{}, {}, {"Total": 7}, {"Total": 0}] + [{}] * 6


def test_no_data_at_all_is_one_series_of_empty_points() -> None:
    [series] = plan_time_series(query(), BY_NAME["cachehits"], {})
    assert [t - T0 for t, _ in series.data] == [60 * i for i in range(10)]
    assert all(not v for _, v in series.data)


def test_a_day_at_one_minute_has_1440_points() -> None:
    q = plan_metrics_query({"timespan": "2026-01-01T00:00:30Z/PT24H"}, T0)
    [series] = plan_time_series(q, BY_NAME["cachehits"], {(): [minute(i, 1) for i in range(0, 1500, 7)]})
    assert len(series.data) == 1440 and series.data[0][0] == T0 + 60  # ends with the minute of its end
    assert sum(v.get("Total", 0) for _, v in series.data) == len(range(7, 1441, 7))


NODES = {
    ("d1-0-0",): [minute(0, 10), minute(1, 30)],
    ("d1-0-1",): [minute(0, 50)],
    ("d1-1-0",): [minute(5, 20)],
}


def test_not_split_adds_up_the_instances() -> None:
    [series] = plan_time_series(
        query(aggregation="Maximum,Total,Count"), BY_NAME["percentProcessorTime"], NODES
    )
    assert dict(series.data[0][1]) == {"Maximum": 50, "Total": 60, "Count": 2}
    assert dict(series.data[5][1]) == {"Maximum": 20, "Total": 20, "Count": 1}


def test_split_by_instance() -> None:
    q = query(aggregation="Total", **{"$filter": "InstanceId eq '*'"})
    answer = plan_time_series(q, BY_NAME["percentProcessorTime"], NODES)
    assert [s.dimensions for s in answer] == [(("InstanceId", n),) for n in ("d1-0-0", "d1-0-1", "d1-1-0")]
    assert [sum(v.get("Total", 0) for _, v in s.data) for s in answer] == [40, 50, 20]


def test_select_instances() -> None:
    q = query(**{"$filter": "InstanceId eq 'd1-1-0' or InstanceId eq 'nope'"})
    [series] = plan_time_series(q, BY_NAME["percentProcessorTime"], NODES)
    assert series.dimensions == (("InstanceId", "d1-1-0"),)


@pytest.mark.parametrize(
    ("orderby", "top", "order"),
    [
        ("Total desc", "10", ["d1-0-1", "d1-0-0", "d1-1-0"]),
        ("Total asc", "2", ["d1-1-0", "d1-0-0"]),
        ("Maximum", "1", ["d1-0-1"]),
        ("", "2", ["d1-0-0", "d1-0-1"]),  # no orderby: by dimension value
    ],
)
def test_top_and_orderby(orderby: str, top: str, order: list[str]) -> None:
    q = query(top=top, orderby=orderby, **{"$filter": "InstanceId eq '*'"})
    answer = plan_time_series(q, BY_NAME["percentProcessorTime"], NODES)
    assert [s.dimensions[0][1] for s in answer] == order


def test_a_dimension_the_metric_lacks() -> None:
    q = query(**{"$filter": "InstanceId eq '*'"})
    with pytest.raises(ArmError, match="cachehits has no dimension InstanceId") as e:
        plan_time_series(q, BY_NAME["cachehits"], {(): [minute(0, 1)]})
    assert e.value.status == 400
    lenient = query(ValidateDimensions="false", **{"$filter": "InstanceId eq '*'"})
    [series] = plan_time_series(lenient, BY_NAME["cachehits"], {(): [minute(0, 1)]})
    assert series.dimensions == () and dict(series.data[0][1]) == {"Total": 1}


def test_full_is_one_value_over_the_span() -> None:
    [series] = plan_time_series(query(interval="FULL", aggregation="Total"), BY_NAME["cachehits"],
                                {(): [minute(0, 1), minute(9, 2), minute(10, 100)]})  # fmt: skip
    assert [(t - T0, dict(v)) for t, v in series.data] == [(0, {"Total": 3})]


def test_default_aggregation_is_the_metrics_primary_one() -> None:
    [series] = plan_time_series(query(), BY_NAME["usedmemory"], {(): [minute(0, 5, 9)]})
    assert dict(series.data[0][1]) == {"Maximum": 9}
