"""The reconciler's alert rules file: every rule with its enabled action groups' receivers, rewritten
only when the store's rules or groups change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from amr.logic.alerts.files import parse_alert_rules
from amr.model.alerts import ActionGroup, AlertCriterion, MetricAlert, WebhookReceiver
from amr.reconciler.alert_rules import AlertRulesPublisher
from amr.store.repository import SqlStore

CACHE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c1"


def test_publishes_rules_with_enabled_groups_receivers(tmp_path: Path) -> None:
    store = SqlStore.open_file(tmp_path / "amr.db")
    group = ActionGroup(
        "s", "rg", "ops", "ops", webhooks=(WebhookReceiver("h", "https://example.com/x", True),)
    )
    store.insert(group)
    c = AlertCriterion("c1", "evictedkeys", "Microsoft.Cache/redisEnterprise", "GreaterThan", 0, "Total")
    store.insert(
        MetricAlert("s", "rg", "evict", 3, True, (CACHE,), "PT1M", "PT1M", (c,), action_group_ids=(group.id,))
    )
    path = tmp_path / "monitor" / "alert-rules.json"
    publisher = AlertRulesPublisher(store, path)
    publisher.publish()
    [watched] = parse_alert_rules(path.read_text())
    assert watched.rule.name == "evict" and watched.webhooks == group.webhooks
    stamp = path.stat().st_mtime_ns
    publisher.publish()
    assert path.stat().st_mtime_ns == stamp  # unchanged: not rewritten
    store.replace(group, dataclasses.replace(group, enabled=False))
    publisher.publish()
    assert parse_alert_rules(path.read_text())[0].webhooks == ()
    store.close()
