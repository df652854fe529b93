"""Deciding, at one evaluation of a metric alert rule, what each criterion's value is and whether
the rule's alert fires, stays, or resolves."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from amr.model.alerts import AlertCriterion, CriterionValue, FiredAlert, MetricAlert

FIRED = "Fired"
RESOLVED = "Resolved"


def _selected(criterion: AlertCriterion, dimension_names: Sequence[str], values: Sequence[str]) -> bool:
    for d in criterion.dimensions:
        if d.name not in dimension_names:
            continue
        value = values[list(dimension_names).index(d.name)] if len(values) == len(dimension_names) else ""
        matches = "*" in d.values or value in d.values
        if matches != (d.operator == "Include"):
            return False
    return True


def plan_criterion_value(
    criterion: AlertCriterion,
    dimension_names: Sequence[str],
    series: Mapping[tuple[str, ...], Sequence[float]],
) -> float | None:
    """The criterion's time aggregation of the window's points of every series its dimension
    filters select, taken together (as an unsplit Azure metric adds up its instances); None when
    the window has no point (no data neither fires nor resolves)."""
    points = [
        v for dims, values in series.items() if _selected(criterion, dimension_names, dims) for v in values
    ]
    if not points:
        return None
    aggregation = criterion.time_aggregation
    if aggregation == "Average":
        return sum(points) / len(points)
    if aggregation == "Total":
        return float(sum(points))
    if aggregation == "Count":
        return float(len(points))
    if aggregation == "Minimum":
        return min(points)
    return max(points)


def choose_criterion_holds(operator: str, value: float, threshold: float) -> bool:
    """Whether ``value operator threshold`` holds."""
    return {
        "GreaterThan": value > threshold,
        "GreaterThanOrEqual": value >= threshold,
        "LessThan": value < threshold,
        "LessThanOrEqual": value <= threshold,
        "Equals": value == threshold,
    }[operator]


def plan_alert(
    rule: MetricAlert,
    values: Sequence[float | None],
    current: FiredAlert | None,
    now: str,
    new_alert_id: str,
) -> tuple[FiredAlert | None, str | None]:
    """The rule's alert after this evaluation and the notification to send (Fired, Resolved or
    None). Every criterion (allOf) must hold to fire; the alert resolves when one no longer holds,
    if the rule has autoMitigate. A criterion without data leaves the alert as it is."""
    if any(v is None for v in values):
        return current, None
    measured = tuple(
        CriterionValue(c.name, c.metric_name, float(v))
        for c, v in zip(rule.criteria, values, strict=True)
        if v is not None
    )
    holds = all(
        choose_criterion_holds(c.operator, float(v), c.threshold)
        for c, v in zip(rule.criteria, values, strict=True)
        if v is not None
    )
    active = current is not None and current.condition == FIRED
    if holds and not active:
        fired = FiredAlert(
            new_alert_id, rule.id, rule.name, rule.severity, rule.scopes[0], FIRED, now, "", measured
        )
        return fired, FIRED
    if holds and current is not None:
        return dataclasses.replace(current, values=measured), None
    if active and current is not None and rule.auto_mitigate:
        return dataclasses.replace(current, condition=RESOLVED, resolved_at=now, values=measured), RESOLVED
    return current, None
