"""Metric alert rules and action groups (``Microsoft.Insights/metricAlerts`` and ``actionGroups``)
as amr keeps them: our model, mapped from and to ARM JSON in ``amr.api.wire_alerts``."""

from __future__ import annotations

from dataclasses import dataclass, field

from amr.model.resources import group_id, lookup_key

METRIC_ALERT_TYPE = "Microsoft.Insights/metricAlerts"
ACTION_GROUP_TYPE = "Microsoft.Insights/actionGroups"


@dataclass(frozen=True)
class WebhookReceiver:
    """Where an action group posts: a name unique in the group and an http(s) URL."""

    name: str
    service_uri: str
    use_common_alert_schema: bool = False


@dataclass(frozen=True)
class ActionGroup:
    subscription_id: str
    resource_group: str
    name: str
    short_name: str
    location: str = "Global"
    enabled: bool = True
    webhooks: tuple[WebhookReceiver, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, "actiongroups", self.name)

    @property
    def id(self) -> str:
        return f"{group_id(self.subscription_id, self.resource_group)}/providers/microsoft.insights/actionGroups/{self.name}"


@dataclass(frozen=True)
class DimensionFilter:
    """Which values of a dimension a criterion looks at (``Include``) or leaves out (``Exclude``);
    ``*`` among the values means every value."""

    name: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AlertCriterion:
    """A static threshold: ``time_aggregation(metric over the window) operator threshold``."""

    name: str
    metric_name: str
    metric_namespace: str
    operator: str
    threshold: float
    time_aggregation: str
    dimensions: tuple[DimensionFilter, ...] = ()


@dataclass(frozen=True)
class MetricAlert:
    subscription_id: str
    resource_group: str
    name: str
    severity: int
    enabled: bool
    scopes: tuple[str, ...]
    evaluation_frequency: str
    window_size: str
    criteria: tuple[AlertCriterion, ...]
    location: str = "global"
    description: str = ""
    auto_mitigate: bool = True
    action_group_ids: tuple[str, ...] = ()
    target_resource_type: str = ""
    target_resource_region: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    last_updated: str = ""

    @property
    def key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, "metricalerts", self.name)

    @property
    def id(self) -> str:
        return f"{group_id(self.subscription_id, self.resource_group)}/providers/Microsoft.Insights/metricAlerts/{self.name}"


@dataclass(frozen=True)
class CriterionValue:
    """What a criterion's metric was at an evaluation (its time aggregation over the window)."""

    criterion: str
    metric: str
    value: float


@dataclass(frozen=True)
class FiredAlert:
    """One alert of a rule, from when it fired until (with autoMitigate) it resolved."""

    alert_id: str
    rule_id: str
    rule_name: str
    severity: int
    target: str
    condition: str  # Fired or Resolved
    fired_at: str
    resolved_at: str = ""
    values: tuple[CriterionValue, ...] = ()
