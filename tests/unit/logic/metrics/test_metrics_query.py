"""Reading an Azure Monitor metrics query (amr.logic.metrics.query): time spans, time grains,
aggregations, metric names, dimension filters and orderby; every mistake is a 400 that says what
to write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amr.errors import ArmError
from amr.logic.metrics.query import (
    choose_window,
    parse_aggregations,
    parse_dimension_filter,
    parse_duration,
    parse_interval,
    parse_metric_names,
    parse_order_by,
    parse_timespan,
    plan_metrics_query,
    render_duration,
    render_timespan,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
DIMS = ("InstanceId", "ErrorType")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1M", 60), ("PT24H", 86400), ("P1D", 86400), ("P1DT2H", 93600), ("PT90S", 90), ("P1W", 604800),
     ("pt5m", 300), ("PT0.5S", 0.5)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["P", "PT", "P1M2", "1h", "P1Y", "P1M", "PT1H30", "P1DT"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ArmError, match="ISO 8601 duration"):
        parse_duration(text, "x")


@pytest.mark.parametrize(
    ("text", "span"),
    [
        (None, (T0 - 3600, T0)),
        ("2026-01-01T00:00:00Z/2026-01-02T00:00:00Z", (T0, T0 + 86400)),
        ("2026-01-01T00:00:00/2026-01-01T01:00:00", (T0, T0 + 3600)),  # no offset: UTC
        ("2026-01-01T01:00:00+01:00/PT1H", (T0, T0 + 3600)),
        ("PT24H/2026-01-02T00:00:00Z", (T0, T0 + 86400)),
        ("2026-01-01T00:00:00.000Z/2026-01-01T00:30:00.000Z", (T0, T0 + 1800)),
    ],
)
def test_timespans(text: str | None, span: tuple[float, float]) -> None:
    assert parse_timespan(text, T0) == span


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-01-01T00:00:00Z", "start/end"),
        ("yesterday/today", "ISO 8601 time"),
        ("2026-01-01T00:00:00Z/", "start/end"),
        ("2026-01-02T00:00:00Z/2026-01-01T00:00:00Z", "ends before it starts"),
        ("2026-01-01T00:00:00Z/PT", "ISO 8601 duration"),
        ("2026-13-01T00:00:00Z/PT1H", "ISO 8601 time"),
    ],
)
def test_bad_timespans(text: str, says: str) -> None:
    with pytest.raises(ArmError, match=says) as e:
        parse_timespan(text, T0)
    assert e.value.status == 400 and e.value.target == "timespan"


@pytest.mark.parametrize(
    ("text", "auto", "grain"),
    [(None, False, 60), ("PT1M", False, 60), ("PT5M", False, 300), ("PT60M", False, 3600), ("P1D", False, 86400),
     ("PT12H", False, 43200), ("FULL", False, None), ("full", False, None), ("PT2M", True, 300),
     ("PT7H", True, 43200)],
)  # fmt: skip
def test_intervals(text: str | None, auto: bool, grain: int | None) -> None:
    assert parse_interval(text, auto) == grain


@pytest.mark.parametrize(("text", "auto"), [("PT2M", False), ("PT10S", False), ("1m", False), ("P2D", True)])
def test_bad_intervals(text: str, auto: bool) -> None:
    with pytest.raises(ArmError, match="PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D, FULL"):
        parse_interval(text, auto)


def test_grains_render_as_azure_names_them() -> None:
    assert [render_duration(g) for g in (60, 3600, 86400, None)] == ["PT1M", "PT1H", "P1D", "FULL"]
    assert render_timespan(T0, T0 + 60) == "2026-01-01T00:00:00Z/2026-01-01T00:01:00Z"


@pytest.mark.parametrize(
    ("text", "chosen"),
    [(None, None), ("", None), ("total", ("Total",)), ("Average,count", ("Average", "Count")),
     (" maximum , Minimum,maximum", ("Maximum", "Minimum"))],
)  # fmt: skip
def test_aggregations(text: str | None, chosen: tuple[str, ...] | None) -> None:
    assert parse_aggregations(text) == chosen


def test_unknown_aggregation_lists_the_known_ones() -> None:
    with pytest.raises(ArmError, match="Unknown aggregation 'sum': use one or more of Average, Count"):
        parse_aggregations("Total,sum")


@pytest.mark.parametrize(
    ("text", "names"),
    [(None, ("cachehits",)), ("cachehits", ("cachehits",)), ("SETCOMMANDS,getcommands", ("setcommands", "getcommands")),
     ("cacheLatency,cachelatency", ("cacheLatency",))],
)  # fmt: skip
def test_metric_names(text: str | None, names: tuple[str, ...]) -> None:
    assert tuple(m.name for m in parse_metric_names(text)) == names


def test_unknown_metric_names_are_named_with_the_known_ones() -> None:
    with pytest.raises(
        ArmError, match="Unknown metric name\\(s\\) 'hits', 'sets'.*cachehits, cacheLatency"
    ) as e:
        parse_metric_names("hits,cachehits,sets")
    assert e.value.target == "metricnames"


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        (None, {}),
        ("InstanceId eq '*'", {"InstanceId": None}),
        ("instanceid eq 'd1-0-0'", {"InstanceId": ("d1-0-0",)}),
        ("InstanceId eq 'a' or InstanceId eq 'b'", {"InstanceId": ("a", "b")}),
        ("(InstanceId eq 'a' or InstanceId eq 'b') and ErrorType eq '*'", {"InstanceId": ("a", "b"), "ErrorType": None}),
        ("InstanceId eq 'has and or inside'", {"InstanceId": ("has and or inside",)}),
    ],
)  # fmt: skip
def test_dimension_filters(text: str | None, chosen: dict[str, object]) -> None:
    assert parse_dimension_filter(text, DIMS) == chosen


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("InstanceId", "does not parse"),
        ("InstanceId eq *", "does not parse"),
        ("InstanceId eq 'a", "unclosed quote"),
        ("Shard eq '*'", "dimension 'Shard'"),
        ("InstanceId ne 'a'", "only 'eq'"),
        ("InstanceId eq 'a' or ErrorType eq 'b'", "one dimension"),
        ("InstanceId eq 'a' and InstanceId eq 'b'", "twice"),
    ],
)
def test_bad_dimension_filters(text: str, says: str) -> None:
    with pytest.raises(ArmError, match=says) as e:
        parse_dimension_filter(text, DIMS)
    assert e.value.status == 400 and e.value.target == "$filter"


@pytest.mark.parametrize(
    ("text", "order"),
    [(None, None), ("total", ("Total", True)), ("Average asc", ("Average", False)), ("maximum DESC", ("Maximum", True))],
)  # fmt: skip
def test_order_by(text: str | None, order: tuple[str, bool] | None) -> None:
    assert parse_order_by(text) == order


@pytest.mark.parametrize("text", ["sum asc", "Total up", "Total asc now"])
def test_bad_order_by(text: str) -> None:
    with pytest.raises(ArmError, match="asc\\|desc"):
        parse_order_by(text)


@pytest.mark.parametrize(
    ("start", "end", "grain", "window"),
    [
        (T0, T0 + 86400, 60, (T0, T0 + 86400)),
        (T0 + 30, T0 + 86430, 60, (T0 + 60, T0 + 86460)),  # an offset 24 h: 1,440 minutes, the newest too
        (T0 + 10, T0 + 20, 60, (T0, T0 + 60)),  # shorter than a grain: its one bucket
        (T0 + 50, T0 + 70, 60, (T0 + 60, T0 + 120)),
        (T0 + 10, T0 + 20.5, None, (T0 + 10, T0 + 21)),
        (T0 + 3000, T0 + 7300, 3600, (T0 + 3600, T0 + 10800)),
    ],
)
def test_windows(start: float, end: float, grain: int | None, window: tuple[float, float]) -> None:
    assert choose_window(start, end, grain) == window


def test_a_whole_query() -> None:
    q = plan_metrics_query(
        {"metricnames": "cachehits,connectedclients", "Timespan": "PT1H/2026-01-01T00:00:00Z", "interval": "PT5M",
         "aggregation": "total", "$filter": "InstanceId eq '*'", "top": "3", "orderby": "Total asc",
         "resultType": "Metadata", "api-version": "2024-02-01", "ValidateDimensions": "false"},
        T0,
    )  # fmt: skip
    assert [m.name for m in q.metrics] == ["cachehits", "connectedclients"]
    assert (q.start, q.end, q.grain, q.aggregations) == (T0 - 3600, T0, 300, ("Total",))
    assert (q.dimensions, q.top, q.order_by, q.metadata_only, q.validate_dimensions) == (
        {"InstanceId": None}, 3, ("Total", False), True, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"top": "0"}, "top"),
        ({"top": "ten"}, "top"),
        ({"resultType": "Everything"}, "resultType"),
        ({"metricnamespace": "Microsoft.Compute/virtualMachines"}, "metricnamespace"),
        ({"ValidateDimensions": "maybe"}, "ValidateDimensions"),
        ({"timespan": "2025-01-01T00:00:00Z/2026-01-01T00:00:00Z"}, "interval"),  # 525,600 minutes
    ],
)
def test_bad_queries(params: dict[str, str], target: str) -> None:
    with pytest.raises(ArmError) as e:
        plan_metrics_query(params, T0)
    assert e.value.status == 400 and e.value.target == target
