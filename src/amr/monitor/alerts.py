"""Evaluating metric alert rules in `amr monitord`, with the control plane up or down.

The rules come from ``AMR_HOME/monitor/alert-rules.json`` (the reconciler writes it from the store).
Each enabled rule is evaluated on multiples of its evaluationFrequency (times
``monitor.alert_time_scale``): every criterion's timeAggregation of the window's raw points in the
metric store, then ``amr.logic.alerts.evaluate.plan_alert`` decides whether its alert fires, stays or
resolves. A notification goes to every webhook receiver of the rule's action groups in the
background (amr.monitor.webhooks), so a slow receiver never holds up an evaluation. The alerts are
kept in ``AMR_HOME/monitor/alerts.json`` (the API lists them; a restart of monitord does not notify
again for an alert that was already sent).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from amr.errors import ConfigError
from amr.home import FollowedFile, write_private
from amr.logic.alerts.evaluate import plan_alert, plan_criterion_value
from amr.logic.alerts.files import WatchedRule, parse_alert_rules, parse_alert_state, render_alert_state
from amr.logic.alerts.payload import render_common_alert, render_metric_alert_schema
from amr.logic.alerts.rules import FREQUENCIES, WINDOW_SIZES
from amr.logic.metrics.azure import METRICS
from amr.model.alerts import AlertCriterion, FiredAlert
from amr.monitor.store import MetricStore, Series
from amr.monitor.webhooks import WebhookSender

log = logging.getLogger(__name__)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class AlertEvaluator:
    """The rules file followed, each rule's next evaluation, and the alerts (saved when they change)."""

    def __init__(
        self,
        rules_path: Path,
        state_path: Path,
        store: MetricStore,
        sender: WebhookSender,
        time_scale: float,
        new_id: Callable[[], str],
    ) -> None:
        self._rules_file = FollowedFile(rules_path)
        self._state_path = state_path
        self._store = store
        self._sender = sender
        self._scale = time_scale
        self._new_id = new_id
        self._rules: list[WatchedRule] = []
        self._next: dict[str, float] = {}  # rule id -> when it is evaluated next
        self._alerts: dict[str, FiredAlert] = {}  # rule id -> its latest alert
        self._history: list[FiredAlert] = []  # resolved alerts before each rule's latest
        self._load_state()

    def _load_state(self) -> None:
        try:
            alerts = parse_alert_state(self._state_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, ConfigError) as e:
            log.warning("cannot read the alerts file %s: %s; starting without alerts", self._state_path, e)
            return
        for a in sorted(alerts, key=lambda a: a.fired_at):
            previous = self._alerts.get(a.rule_id)
            if previous is not None:
                self._history.append(previous)
            self._alerts[a.rule_id] = a

    def _save(self) -> None:
        try:
            write_private(self._state_path, render_alert_state([*self._history, *self._alerts.values()]))
        except OSError as e:
            log.error("cannot write the alerts file %s: %s", self._state_path, e)

    def _read_rules(self) -> None:
        look = self._rules_file.look()
        if not look.changed:
            return
        try:
            self._rules = parse_alert_rules(look.text) if look.text is not None else []
        except ConfigError as e:
            log.warning("%s (%s); keeping the rules read before", e, self._rules_file.path)
            return
        ids = {w.rule.id.lower() for w in self._rules}
        gone = [r for r in self._alerts if r.lower() not in ids]
        for rule_id in gone:  # a deleted rule's alerts end without a notification, as in Azure
            self._alerts.pop(rule_id)
        if gone:
            self._save()
        log.info("alert rules: %d", len(self._rules))

    def _period(self, seconds: int) -> float:
        return max(seconds * self._scale, 1.0)

    def _value(self, criterion: AlertCriterion, resource: str, start: float, end: float) -> float | None:
        metric = next(m for m in METRICS if m.name == criterion.metric_name)
        series = {
            dims: [v for _, v in self._store.points(Series(resource, name, dims), start, end)]
            for name, dims in self._store.series(resource)
            if name == metric.name
        }
        return plan_criterion_value(criterion, metric.dimensions, series)

    def tick(self, now: float) -> list[str]:
        """Evaluate the rules that are due; the outcomes (one per notification started)."""
        self._read_rules()
        outcomes: list[str] = []
        changed = False
        for watched in self._rules:
            rule = watched.rule
            if not rule.enabled:
                continue
            frequency = self._period(FREQUENCIES[rule.evaluation_frequency])
            due = self._next.get(rule.id)
            if due is None or now >= due:
                self._next[rule.id] = (math.floor(now / frequency) + 1) * frequency
            if due is None or now < due:
                continue  # a new rule is first evaluated at the next multiple of its frequency
            # The window's points are those with now - window < t <= now (whole seconds, as the store
            # keeps them), so consecutive windows never count a point twice.
            end = math.floor(now) + 1
            start = end - round(self._period(WINDOW_SIZES[rule.window_size]))
            resource = rule.scopes[0].lower()
            values = [self._value(c, resource, start, end) for c in rule.criteria]
            current = self._alerts.get(rule.id)
            alert, notify = plan_alert(rule, values, current, _iso(now), self._new_id())
            if alert is None or alert == current:
                continue
            if current is not None and alert.alert_id != current.alert_id:
                self._history.append(current)
            self._alerts[rule.id] = alert
            changed = True
            if notify is not None:
                outcomes.append(f"alert {rule.name} {notify.lower()} ({len(watched.webhooks)} webhook(s))")
                self._notify(watched, alert)
        if changed:
            self._save()
        return outcomes

    def _notify(self, watched: WatchedRule, alert: FiredAlert) -> None:
        rule = watched.rule
        base = f"/subscriptions/{rule.subscription_id}/providers/Microsoft.AlertsManagement/alerts"
        for hook in watched.webhooks:
            body = (
                render_common_alert(rule, alert, base)
                if hook.use_common_alert_schema
                else render_metric_alert_schema(rule, alert)
            )
            self._sender.send(hook.name, hook.service_uri, body)
