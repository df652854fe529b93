"""Fire/resolve decisions, criterion values and the webhook payloads, table-driven."""

from __future__ import annotations

import pytest

from amr.logic.alerts.evaluate import (
    FIRED,
    RESOLVED,
    choose_criterion_holds,
    plan_alert,
    plan_criterion_value,
)
from amr.logic.alerts.files import (
    parse_alert_rules,
    parse_alert_state,
    plan_watched_rules,
    render_alert_rules,
    render_alert_state,
)
from amr.logic.alerts.payload import render_common_alert, render_metric_alert_schema
from amr.model.alerts import AlertCriterion, DimensionFilter, MetricAlert, WebhookReceiver

CACHE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c1"


def rule(operator: str = "GreaterThan", threshold: float = 80, auto: bool = True) -> MetricAlert:
    c = AlertCriterion(
        "c1", "usedmemorypercentage", "Microsoft.Cache/redisEnterprise", operator, threshold, "Average"
    )
    return MetricAlert("s", "rg", "mem", 2, True, (CACHE,), "PT1M", "PT5M", (c,), auto_mitigate=auto,
                       action_group_ids=("/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/actionGroups/ag",))  # fmt: skip


@pytest.mark.parametrize(
    ("operator", "value", "threshold", "holds"),
    [("GreaterThan", 81, 80, True), ("GreaterThan", 80, 80, False), ("GreaterThanOrEqual", 80, 80, True),
     ("LessThan", 1, 2, True), ("LessThanOrEqual", 2, 2, True), ("LessThan", 2, 2, False),
     ("Equals", 3, 3, True), ("Equals", 3, 4, False)],
)  # fmt: skip
def test_operators(operator: str, value: float, threshold: float, holds: bool) -> None:
    assert choose_criterion_holds(operator, value, threshold) is holds


@pytest.mark.parametrize(
    ("aggregation", "dimensions", "want"),
    [("Average", (), 2.5), ("Total", (), 10.0), ("Count", (), 4.0), ("Minimum", (), 1.0), ("Maximum", (), 4.0),
     ("Total", (DimensionFilter("InstanceId", "Include", ("n1",)),), 3.0),
     ("Total", (DimensionFilter("InstanceId", "Exclude", ("n1",)),), 7.0),
     ("Total", (DimensionFilter("InstanceId", "Include", ("*",)),), 10.0)],
)  # fmt: skip
def test_criterion_values(aggregation: str, dimensions: tuple[DimensionFilter, ...], want: float) -> None:
    c = AlertCriterion("c", "cacheRead", "ns", "GreaterThan", 0, aggregation, dimensions)
    assert plan_criterion_value(c, ("InstanceId",), {("n1",): [1, 2], ("n2",): [3, 4]}) == want


def test_no_points_is_no_value() -> None:
    c = AlertCriterion("c", "evictedkeys", "ns", "GreaterThan", 0, "Total")
    assert plan_criterion_value(c, (), {}) is None


def test_fire_stay_resolve() -> None:
    r = rule()
    fired, sent = plan_alert(r, [91.0], None, "t1", "id1")
    assert sent == FIRED and fired is not None and fired.values[0].value == 91.0
    stays, sent = plan_alert(r, [95.0], fired, "t2", "id2")
    assert sent is None and stays is not None and stays.alert_id == "id1" and stays.values[0].value == 95.0
    unchanged, sent = plan_alert(r, [None], stays, "t3", "id3")
    assert (unchanged, sent) == (stays, None)  # no data neither fires nor resolves
    resolved, sent = plan_alert(r, [10.0], stays, "t4", "id4")
    assert sent == RESOLVED and resolved is not None and resolved.resolved_at == "t4"
    again, sent = plan_alert(r, [90.0], resolved, "t5", "id5")
    assert sent == FIRED and again is not None and again.alert_id == "id5"


def test_without_auto_mitigate_an_alert_stays_fired() -> None:
    fired, _ = plan_alert(rule(auto=False), [91.0], None, "t1", "id1")
    assert plan_alert(rule(auto=False), [1.0], fired, "t2", "id2") == (fired, None)


def test_payloads() -> None:
    r = rule()
    fired, _ = plan_alert(r, [91.0], None, "2025-07-01T12:00:00Z", "id1")
    assert fired is not None
    body = render_common_alert(r, fired, "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts")
    e = body["data"]["essentials"]
    assert body["schemaId"] == "azureMonitorCommonAlertSchema"
    assert (e["monitorCondition"], e["severity"], e["signalType"], e["monitoringService"]) == (
        "Fired",
        "Sev2",
        "Metric",
        "Platform",
    )
    assert e["alertTargetIDs"] == [CACHE.lower()] and "resolvedDateTime" not in e
    assert body["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] == 91.0
    window = body["data"]["alertContext"]["condition"]
    assert (window["windowStartTime"], window["windowEndTime"]) == (
        "2025-07-01T11:55:00Z",
        "2025-07-01T12:00:00Z",
    )
    resolved, _ = plan_alert(r, [1.0], fired, "2025-07-01T12:05:00Z", "id2")
    assert resolved is not None
    e = render_common_alert(r, resolved, "x")["data"]["essentials"]
    assert (e["monitorCondition"], e["resolvedDateTime"]) == ("Resolved", "2025-07-01T12:05:00Z")
    assert render_metric_alert_schema(r, resolved)["data"]["status"] == "Deactivated"


def test_files_round_trip() -> None:
    hook = WebhookReceiver("h", "http://127.0.0.1:1/x", True)
    watched = plan_watched_rules([rule()], {rule().action_group_ids[0].lower(): (hook,)})
    assert watched[0].webhooks == (hook,)
    assert parse_alert_rules(render_alert_rules(watched)) == watched
    fired, _ = plan_alert(rule(), [91.0], None, "t1", "id1")
    assert fired is not None
    assert parse_alert_state(render_alert_state([fired])) == [fired]
