"""The two files `amr monitord` shares about alerts, rendered and parsed here:

- ``AMR_HOME/monitor/alert-rules.json``, which the reconciler writes from the store: every rule with
  the webhook receivers of its enabled action groups, so that monitord evaluates and notifies with
  the control plane down;
- ``AMR_HOME/monitor/alerts.json``, which monitord writes: each rule's alerts (fired and resolved),
  which the API lists and which monitord reads back after a restart (no second notification).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from amr.errors import ConfigError
from amr.model.alerts import (
    AlertCriterion,
    CriterionValue,
    DimensionFilter,
    FiredAlert,
    MetricAlert,
    WebhookReceiver,
)

RULES_FILE_NAME = "alert-rules.json"
STATE_FILE_NAME = "alerts.json"
RESOLVED_KEPT = 200  # resolved alerts listed after they ended (the newest)


@dataclasses.dataclass(frozen=True)
class WatchedRule:
    """A rule as monitord evaluates it: the rule and where to post its notifications."""

    rule: MetricAlert
    webhooks: tuple[WebhookReceiver, ...] = ()


def render_alert_rules(rules: list[WatchedRule]) -> str:
    """The rules file's text (stable: unchanged rules render the same)."""
    return json.dumps({"rules": [dataclasses.asdict(r) for r in rules]}, sort_keys=True, indent=1)


def _rule(data: dict[str, Any]) -> MetricAlert:
    criteria = tuple(
        AlertCriterion(**{**c, "dimensions": tuple(
            DimensionFilter(d["name"], d["operator"], tuple(d["values"])) for d in c["dimensions"])})
        for c in data["criteria"]
    )  # fmt: skip
    return MetricAlert(**{
        **data, "scopes": tuple(data["scopes"]), "criteria": criteria,
        "action_group_ids": tuple(data["action_group_ids"]),
    })  # fmt: skip


def parse_alert_rules(text: str) -> list[WatchedRule]:
    """The rules file's rules; ConfigError when it is not what render_alert_rules wrote."""
    try:
        return [
            WatchedRule(_rule(r["rule"]), tuple(WebhookReceiver(**h) for h in r["webhooks"]))
            for r in json.loads(text)["rules"]
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"the alert rules file is not valid: {e}") from e


def render_alert_state(alerts: list[FiredAlert]) -> str:
    """The alerts file's text: every alert still fired, and the newest resolved ones."""
    fired = [a for a in alerts if a.condition != "Resolved"]
    resolved = sorted((a for a in alerts if a.condition == "Resolved"), key=lambda a: a.resolved_at)
    kept = fired + resolved[-RESOLVED_KEPT:]
    return json.dumps({"alerts": [dataclasses.asdict(a) for a in kept]}, sort_keys=True, indent=1)


def parse_alert_state(text: str) -> list[FiredAlert]:
    """The alerts file's alerts; ConfigError when it is not what render_alert_state wrote."""
    try:
        return [
            FiredAlert(**{**a, "values": tuple(CriterionValue(**v) for v in a["values"])})
            for a in json.loads(text)["alerts"]
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"the alerts file is not valid: {e}") from e


def plan_watched_rules(
    rules: list[MetricAlert], webhooks_by_group: dict[str, tuple[WebhookReceiver, ...]]
) -> list[WatchedRule]:
    """Each rule with the receivers of its action groups (``webhooks_by_group``: an enabled group's
    id in lower case, its receivers; a disabled or missing group contributes none)."""
    return [
        WatchedRule(r, tuple(h for g in r.action_group_ids for h in webhooks_by_group.get(g.lower(), ())))
        for r in sorted(rules, key=lambda r: r.id.lower())
    ]
