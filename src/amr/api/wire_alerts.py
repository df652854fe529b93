"""ARM JSON of ``Microsoft.Insights/metricAlerts`` (api-version 2018-03-01) and
``Microsoft.Insights/actionGroups`` (2023-01-01), the versions azure-mgmt-monitor sends, to and from
amr's model. Values are checked in ``amr.logic.alerts.rules``; whether scopes and action groups exist
is checked by the handlers."""

from __future__ import annotations

from typing import Any

from amr.api.wire import as_bool, as_int, as_object, as_str, as_tags, field, has_field
from amr.errors import InvalidParameter
from amr.logic.alerts import rules
from amr.logic.metrics.azure import NAMESPACE
from amr.model.alerts import (
    ACTION_GROUP_TYPE,
    METRIC_ALERT_TYPE,
    ActionGroup,
    AlertCriterion,
    DimensionFilter,
    FiredAlert,
    MetricAlert,
    WebhookReceiver,
)

METRIC_ALERTS_API_VERSIONS = ("2018-03-01",)
ACTION_GROUPS_API_VERSIONS = ("2023-01-01", "2022-06-01", "2021-09-01")


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter(f"'{path}' must be an array.", target=path)
    return value


def _required_str(obj: dict[str, Any], name: str, path: str) -> str:
    value = as_str(field(obj, name), f"{path}.{name}")
    if not value:
        raise InvalidParameter(f"'{path}.{name}' is required.", target=f"{path}.{name}")
    return value


def _dimension(raw: Any, path: str) -> DimensionFilter:
    obj = as_object(raw, path)
    values = [as_str(v, f"{path}.values") or "" for v in _list(field(obj, "values"), f"{path}.values")]
    if not values:
        raise InvalidParameter(
            f"'{path}.values' needs at least one value ('*' for all).", target=f"{path}.values"
        )
    return DimensionFilter(
        _required_str(obj, "name", path),
        rules.validate_dimension_operator(_required_str(obj, "operator", path), f"{path}.operator"),
        tuple(values),
    )


def _criterion(raw: Any, path: str) -> AlertCriterion:
    obj = as_object(raw, path)
    kind = as_str(field(obj, "criterionType"), f"{path}.criterionType") or rules.STATIC_CRITERION
    if kind != rules.STATIC_CRITERION:
        raise InvalidParameter(
            f"'{path}.criterionType' is '{kind}'; amr evaluates static thresholds only "
            f"({rules.STATIC_CRITERION}).",
            target=f"{path}.criterionType",
        )
    metric = rules.validate_metric(
        _required_str(obj, "metricName", path),
        as_str(field(obj, "metricNamespace"), f"{path}.metricNamespace"),
        path,
    )
    if not has_field(obj, "threshold"):
        raise InvalidParameter(f"'{path}.threshold' is required.", target=f"{path}.threshold")
    dimensions = tuple(
        _dimension(d, f"{path}.dimensions[{i}]")
        for i, d in enumerate(_list(field(obj, "dimensions"), f"{path}.dimensions"))
    )
    for d in dimensions:
        if d.name not in metric.dimensions:
            raise InvalidParameter(
                f"Metric {metric.name} has no dimension '{d.name}' (its dimensions: "
                f"{', '.join(metric.dimensions) or 'none'}).",
                target=f"{path}.dimensions",
            )
    return AlertCriterion(
        name=_required_str(obj, "name", path),
        metric_name=metric.name,
        metric_namespace=NAMESPACE,
        operator=rules.validate_operator(_required_str(obj, "operator", path), f"{path}.operator"),
        threshold=rules.validate_threshold(field(obj, "threshold"), path),
        time_aggregation=rules.validate_time_aggregation(
            _required_str(obj, "timeAggregation", path), f"{path}.timeAggregation"
        ),
        dimensions=dimensions,
    )


def parse_metric_alert(
    body: dict[str, Any], subscription_id: str, group: str, name: str, now: str
) -> MetricAlert:
    """The rule a PUT body describes (every value checked; scopes and actions not looked up)."""
    props = as_object(field(body, "properties"), "properties")
    severity = as_int(field(props, "severity"), "properties.severity")
    if severity is None:
        raise InvalidParameter("'properties.severity' is required (0 to 4).", target="properties.severity")
    enabled = as_bool(field(props, "enabled"), "properties.enabled")
    if enabled is None:
        raise InvalidParameter(
            "'properties.enabled' is required (true or false).", target="properties.enabled"
        )
    scopes = tuple(
        as_str(s, "properties.scopes") or "" for s in _list(field(props, "scopes"), "properties.scopes")
    )
    if len(scopes) != 1 or not scopes[0]:
        raise InvalidParameter(
            "'properties.scopes' must hold exactly one resource id: the cache the rule watches.",
            target="properties.scopes",
        )
    frequency, seconds = rules.validate_frequency(
        as_str(field(props, "evaluationFrequency"), "properties.evaluationFrequency") or "PT1M"
    )
    window, _ = rules.validate_window(
        as_str(field(props, "windowSize"), "properties.windowSize") or "PT5M", seconds
    )
    criteria = as_object(field(props, "criteria"), "properties.criteria")
    kind = as_str(field(criteria, "odata.type"), "properties.criteria.odata.type")
    if kind != rules.SINGLE_RESOURCE_CRITERIA:
        raise InvalidParameter(
            f"'properties.criteria.odata.type' must be {rules.SINGLE_RESOURCE_CRITERIA} (static thresholds on "
            f"one cache), not '{kind}'.",
            target="properties.criteria",
        )
    all_of = _list(field(criteria, "allOf"), "properties.criteria.allOf")
    if not 1 <= len(all_of) <= rules.MAX_CRITERIA:
        raise InvalidParameter(
            f"'properties.criteria.allOf' must hold 1 to {rules.MAX_CRITERIA} criteria.",
            target="properties.criteria.allOf",
        )
    actions = []
    for i, a in enumerate(_list(field(props, "actions"), "properties.actions")):
        path = f"properties.actions[{i}]"
        actions.append(_required_str(as_object(a, path), "actionGroupId", path))
    return MetricAlert(
        subscription_id=subscription_id,
        resource_group=group,
        name=name,
        severity=rules.validate_severity(severity),
        enabled=enabled,
        scopes=scopes,
        evaluation_frequency=frequency,
        window_size=window,
        criteria=tuple(_criterion(c, f"properties.criteria.allOf[{i}]") for i, c in enumerate(all_of)),
        location=as_str(field(body, "location"), "location") or "global",
        description=as_str(field(props, "description"), "properties.description") or "",
        auto_mitigate=as_bool(field(props, "autoMitigate"), "properties.autoMitigate") is not False,
        action_group_ids=tuple(actions),
        target_resource_type=as_str(field(props, "targetResourceType"), "properties.targetResourceType")
        or "",
        target_resource_region=as_str(field(props, "targetResourceRegion"), "properties.targetResourceRegion")
        or "",
        tags=as_tags(field(body, "tags")) or {},
        last_updated=now,
    )


def render_metric_alert(rule: MetricAlert) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "type": METRIC_ALERT_TYPE,
        "location": rule.location,
        "tags": rule.tags,
        "properties": {
            "description": rule.description,
            "severity": rule.severity,
            "enabled": rule.enabled,
            "scopes": list(rule.scopes),
            "evaluationFrequency": rule.evaluation_frequency,
            "windowSize": rule.window_size,
            "targetResourceType": rule.target_resource_type,
            "targetResourceRegion": rule.target_resource_region,
            "criteria": {
                "odata.type": rules.SINGLE_RESOURCE_CRITERIA,
                "allOf": [
                    {
                        "criterionType": rules.STATIC_CRITERION,
                        "name": c.name,
                        "metricName": c.metric_name,
                        "metricNamespace": c.metric_namespace,
                        "operator": c.operator,
                        "timeAggregation": c.time_aggregation,
                        "threshold": c.threshold,
                        "dimensions": [
                            {"name": d.name, "operator": d.operator, "values": list(d.values)}
                            for d in c.dimensions
                        ],
                    }
                    for c in rule.criteria
                ],
            },
            "autoMitigate": rule.auto_mitigate,
            "actions": [{"actionGroupId": a, "webHookProperties": {}} for a in rule.action_group_ids],
            "lastUpdatedTime": rule.last_updated,
            "isMigrated": False,
        },
    }


def parse_action_group(body: dict[str, Any], subscription_id: str, group: str, name: str) -> ActionGroup:
    """The action group a PUT body describes (webhook receivers only: amr sends no mail or SMS)."""
    props = as_object(field(body, "properties"), "properties")
    short = as_str(field(props, "groupShortName"), "properties.groupShortName")
    if short is None:
        raise InvalidParameter("'properties.groupShortName' is required.", target="properties.groupShortName")
    enabled = as_bool(field(props, "enabled"), "properties.enabled")
    for other in ("emailReceivers", "smsReceivers", "voiceReceivers", "azureAppPushReceivers", "itsmReceivers",
                  "automationRunbookReceivers", "logicAppReceivers", "azureFunctionReceivers",
                  "armRoleReceivers", "eventHubReceivers"):  # fmt: skip
        if _list(field(props, other), f"properties.{other}"):
            raise InvalidParameter(
                f"'properties.{other}' is not supported by amr: use webhookReceivers.",
                target=f"properties.{other}",
            )
    hooks: list[WebhookReceiver] = []
    for i, raw in enumerate(_list(field(props, "webhookReceivers"), "properties.webhookReceivers")):
        path = f"properties.webhookReceivers[{i}]"
        obj = as_object(raw, path)
        hook_name = _required_str(obj, "name", path)
        if any(h.name.lower() == hook_name.lower() for h in hooks):
            raise InvalidParameter(f"Two webhook receivers are named '{hook_name}'.", target=f"{path}.name")
        hooks.append(
            WebhookReceiver(
                hook_name,
                rules.validate_webhook_uri(_required_str(obj, "serviceUri", path), f"{path}.serviceUri"),
                as_bool(field(obj, "useCommonAlertSchema"), f"{path}.useCommonAlertSchema") is True,
            )
        )
    return ActionGroup(
        subscription_id=subscription_id,
        resource_group=group,
        name=name,
        short_name=rules.validate_short_name(short),
        location=as_str(field(body, "location"), "location") or "Global",
        enabled=enabled is not False,
        webhooks=tuple(hooks),
        tags=as_tags(field(body, "tags")) or {},
    )


def render_action_group(group: ActionGroup) -> dict[str, Any]:
    empty: dict[str, list[Any]] = {k: [] for k in ("emailReceivers", "smsReceivers", "itsmReceivers",
        "azureAppPushReceivers", "automationRunbookReceivers", "voiceReceivers", "logicAppReceivers",
        "azureFunctionReceivers", "armRoleReceivers", "eventHubReceivers")}  # fmt: skip
    return {
        "id": group.id,
        "name": group.name,
        "type": ACTION_GROUP_TYPE,
        "location": group.location,
        "tags": group.tags,
        "properties": {
            "groupShortName": group.short_name,
            "enabled": group.enabled,
            **empty,
            "webhookReceivers": [
                {
                    "name": h.name,
                    "serviceUri": h.service_uri,
                    "useCommonAlertSchema": h.use_common_alert_schema,
                    "useAadAuth": False,
                }  # fmt: skip
                for h in group.webhooks
            ],
        },
    }


FIRED_ALERTS_API_VERSIONS = ("2019-05-05-preview", "2023-07-12-preview")
FIRED_ALERT_TYPE = "Microsoft.AlertsManagement/alerts"


def render_fired_alert(alert: FiredAlert, subscription_id: str) -> dict[str, Any]:
    """An alert in the shape of Azure's Alerts Management API (``essentials`` only)."""
    parts = alert.target.strip("/").split("/")
    return {
        "id": f"/subscriptions/{subscription_id}/providers/{FIRED_ALERT_TYPE}/{alert.alert_id}",
        "type": FIRED_ALERT_TYPE,
        "name": alert.rule_name,
        "properties": {
            "essentials": {
                "severity": f"Sev{alert.severity}",
                "signalType": "Metric",
                "alertState": "New",
                "monitorCondition": alert.condition,
                "monitorService": "Platform",
                "targetResource": alert.target,
                "targetResourceName": parts[-1],
                "targetResourceGroup": parts[3] if len(parts) > 3 else "",
                "targetResourceType": "Microsoft.Cache/redisEnterprise",
                "alertRule": alert.rule_id,
                "startDateTime": alert.fired_at,
                "lastModifiedDateTime": alert.resolved_at or alert.fired_at,
                "monitorConditionResolvedDateTime": alert.resolved_at or None,
            },
            "context": {
                "values": [
                    {"criterion": v.criterion, "metricName": v.metric, "metricValue": v.value}
                    for v in alert.values
                ]
            },  # fmt: skip
        },
    }
