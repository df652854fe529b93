"""``amr monitor alert list`` against the real API app over an alerts file written as `amr monitord`
writes it: JSON in Azure's Alerts Management shape, a table line per alert, the --state filter."""

from __future__ import annotations

from pathlib import Path

from amr.logic.alerts.files import STATE_FILE_NAME, render_alert_state
from amr.model.alerts import CriterionValue, FiredAlert
from amr.testing.api import InProcessApi

from .conftest import SUB, Runner

CACHE = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Cache/redisEnterprise/cache1"
RULE = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Insights/metricAlerts/"


def test_list_json_table_and_state(run: Runner, app: InProcessApi, tmp_path: Path) -> None:
    assert run("monitor", "alert", "list").json() == []
    alerts = [
        FiredAlert("a1", RULE + "mem", "mem", 2, CACHE, "Fired", "2026-01-01T00:01:00Z", "",
                   (CriterionValue("c1", "usedmemorypercentage", 91.5),)),
        FiredAlert("a2", RULE + "evict", "evict", 3, CACHE, "Resolved", "2026-01-01T00:00:00Z",
                   "2026-01-01T00:02:00Z", (CriterionValue("c1", "evictedkeys", 0),)),
    ]  # fmt: skip
    (tmp_path / "api" / "monitor").mkdir(parents=True, exist_ok=True)
    (tmp_path / "api" / "monitor" / STATE_FILE_NAME).write_text(render_alert_state(alerts))
    r = run("monitor", "alert", "list")
    assert r.code == 0, r.err
    assert [a["name"] for a in r.json()] == ["mem", "evict"]
    r = run("monitor", "alert", "list", "-o", "table")
    lines = r.out.splitlines()
    assert lines[0].split() == ["Rule", "Severity", "Condition", "Cache", "Fired", "Resolved", "Value"]
    assert lines[2].split() == [
        "mem",
        "Sev2",
        "Fired",
        "cache1",
        "2026-01-01T00:01:00Z",
        "usedmemorypercentage=91.5",
    ]
    r = run("monitor", "alert", "list", "--state", "Resolved")
    assert [a["name"] for a in r.json()] == ["evict"]
