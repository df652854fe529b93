"""Publishing the metric alert rules to ``AMR_HOME/monitor/alert-rules.json``, which `amr monitord`
evaluates: every rule with the webhook receivers of its enabled action groups. A file (not the
control store) so that alerts keep being evaluated and sent while the API is stopped, as the metric
collector's watch file does; written atomically (0600) and only when it changed."""

from __future__ import annotations

import logging
from pathlib import Path

from amr.home import write_private
from amr.logic.alerts.files import RULES_FILE_NAME, plan_watched_rules, render_alert_rules
from amr.model.alerts import ActionGroup, MetricAlert
from amr.settings import Settings
from amr.store.repository import Store

log = logging.getLogger(__name__)


def alert_rules_file(settings: Settings) -> Path:
    return settings.monitor_dir / RULES_FILE_NAME


class AlertRulesPublisher:
    """Writes the rules file from the store's rules and action groups when its text changes."""

    def __init__(self, store: Store, path: Path) -> None:
        self._store = store
        self._path = path
        self._last: str | None = None

    def publish(self) -> None:
        hooks = {g.id.lower(): g.webhooks for g in self._store.list(ActionGroup) if g.enabled}
        text = render_alert_rules(plan_watched_rules(self._store.list(MetricAlert), hooks))
        if text == self._last:
            return
        try:
            if not self._path.exists() or self._path.read_text() != text:
                write_private(self._path, text)
        except OSError as e:
            # The next pass retries; monitord keeps evaluating the rules it has meanwhile.
            log.warning("cannot write the alert rules file %s: %s", self._path, e)
            return
        self._last = text
