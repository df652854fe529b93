"""The body a webhook receiver gets: Azure Monitor's common alert schema (``useCommonAlertSchema``)
or, without it, the older metric alert schema (``AzureMonitorMetricAlert``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from amr.logic.alerts.evaluate import FIRED
from amr.logic.alerts.rules import WINDOW_SIZES
from amr.logic.metrics.azure import NAMESPACE
from amr.model.alerts import FiredAlert, MetricAlert

CONDITION_TYPE = "SingleResourceMultipleMetricCriteria"


def _conditions(rule: MetricAlert, alert: FiredAlert) -> list[dict[str, Any]]:
    measured = {v.criterion: v.value for v in alert.values}
    return [
        {
            "metricName": c.metric_name,
            "metricNamespace": c.metric_namespace,
            "operator": c.operator,
            "threshold": str(c.threshold),
            "timeAggregation": c.time_aggregation,
            "dimensions": [{"name": d.name, "value": ",".join(d.values)} for d in c.dimensions],
            "metricValue": measured.get(c.name),
            "webTestName": None,
        }
        for c in rule.criteria
    ]


def _window_start(rule: MetricAlert, end: str) -> str | None:
    """The start of the evaluated window that ended at ``end`` (Azure's window size: amr's
    shortened test clock, monitor.alert_time_scale, is not reflected)."""
    try:
        moment = datetime.fromisoformat(end) - timedelta(seconds=WINDOW_SIZES[rule.window_size])
    except (ValueError, KeyError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


def render_common_alert(rule: MetricAlert, alert: FiredAlert, alerts_base: str) -> dict[str, Any]:
    """The common alert schema of ``alert`` as it is now (Fired, or Resolved with its time);
    ``alerts_base`` is the subscription's ``.../providers/Microsoft.AlertsManagement/alerts``."""
    target = alert.target
    parts = target.strip("/").split("/")
    essentials: dict[str, Any] = {
        "alertId": f"{alerts_base}/{alert.alert_id}",
        "alertRule": rule.name,
        "severity": f"Sev{rule.severity}",
        "signalType": "Metric",
        "monitorCondition": alert.condition,
        "monitoringService": "Platform",
        "alertTargetIDs": [target.lower()],
        "configurationItems": [parts[-1]],
        "originAlertId": f"{rule.subscription_id}_{rule.resource_group}_microsoft.insights_metricAlerts_{rule.name}",
        "firedDateTime": alert.fired_at,
        "description": rule.description,
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    }
    if alert.condition != FIRED:
        essentials["resolvedDateTime"] = alert.resolved_at
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": essentials,
            "alertContext": {
                "properties": None,
                "conditionType": CONDITION_TYPE,
                "condition": {
                    "windowSize": rule.window_size,
                    "allOf": _conditions(rule, alert),
                    "windowStartTime": _window_start(rule, alert.resolved_at or alert.fired_at),
                    "windowEndTime": alert.resolved_at or alert.fired_at,
                },
            },
            "customProperties": None,
        },
    }


def render_metric_alert_schema(rule: MetricAlert, alert: FiredAlert) -> dict[str, Any]:
    """The older metric alert schema, for receivers without ``useCommonAlertSchema``."""
    parts = alert.target.strip("/").split("/")
    return {
        "schemaId": "AzureMonitorMetricAlert",
        "data": {
            "version": "2.0",
            "properties": None,
            "status": "Activated" if alert.condition == FIRED else "Deactivated",
            "context": {
                "timestamp": alert.resolved_at or alert.fired_at,
                "id": rule.id,
                "name": rule.name,
                "description": rule.description,
                "conditionType": CONDITION_TYPE,
                "severity": str(rule.severity),
                "condition": {"windowSize": rule.window_size, "allOf": _conditions(rule, alert)},
                "subscriptionId": rule.subscription_id,
                "resourceGroupName": parts[3] if len(parts) > 3 else "",
                "resourceName": parts[-1],
                "resourceType": NAMESPACE,
                "resourceId": alert.target,
                "portalLink": "",
            },
        },
    }
