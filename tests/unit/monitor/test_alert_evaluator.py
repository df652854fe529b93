"""The alert evaluator over a real metric store and rules file, with webhooks behind
httpx.MockTransport: a rule fires at its evaluation after the condition holds, resolves when it no
longer does, each receiver gets its schema, the alerts file survives a restart without a second
notification, and a receiver that fails is retried with backoff."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from amr.logic.alerts.files import STATE_FILE_NAME, WatchedRule, parse_alert_state, render_alert_rules
from amr.model.alerts import AlertCriterion, MetricAlert, WebhookReceiver
from amr.monitor.alerts import AlertEvaluator
from amr.monitor.store import MetricStore
from amr.monitor.webhooks import WebhookSender

CACHE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c1"
T0 = 1_750_000_000 - 1_750_000_000 % 60  # a whole minute


def watched() -> WatchedRule:
    c = AlertCriterion(
        "c1", "usedmemorypercentage", "Microsoft.Cache/redisEnterprise", "GreaterThan", 80, "Average"
    )
    rule = MetricAlert("s", "rg", "mem", 1, True, (CACHE,), "PT1M", "PT1M", (c,))
    return WatchedRule(
        rule, (WebhookReceiver("common", "http://hook/c", True), WebhookReceiver("old", "http://hook/o"))
    )


def run(tmp_path: Path, scenario: Any) -> list[tuple[str, dict[str, Any]]]:
    posted: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200)

    async def main() -> None:
        store = MetricStore(tmp_path / "metrics.db")
        sender = WebhookSender(1, 2, 0.01, httpx.MockTransport(handler))
        (tmp_path / "rules.json").write_text(render_alert_rules([watched()]))

        def evaluator() -> AlertEvaluator:
            ids = iter(f"id{i}" for i in range(100))
            return AlertEvaluator(tmp_path / "rules.json", tmp_path / STATE_FILE_NAME, store, sender, 1.0,
                                  lambda: next(ids))  # fmt: skip

        await scenario(store, evaluator)
        await asyncio.sleep(0.05)
        await sender.close()
        store.close()

    asyncio.run(main())
    return posted


def write(store: MetricStore, t: int, value: float) -> None:
    store.write(t, {CACHE.lower(): {("usedmemorypercentage", ()): value}})


def test_fires_then_resolves_with_both_schemas(tmp_path: Path) -> None:
    async def scenario(store: MetricStore, evaluator: Any) -> None:
        e = evaluator()
        assert e.tick(T0 + 1) == []  # first look: scheduled for the next minute
        for t in range(T0 + 10, T0 + 61, 10):
            write(store, t, 90)
        assert e.tick(T0 + 60) == ["alert mem fired (2 webhook(s))"]
        assert e.tick(T0 + 61) == []  # not due again
        for t in range(T0 + 70, T0 + 121, 10):
            write(store, t, 90)
        assert e.tick(T0 + 120) == []  # still fired: no second notification
        for t in range(T0 + 130, T0 + 181, 10):
            write(store, t, 10)
        assert e.tick(T0 + 180) == ["alert mem resolved (2 webhook(s))"]

    posted = run(tmp_path, scenario)
    common = [b for p, b in posted if p == "/c"]
    assert [b["data"]["essentials"]["monitorCondition"] for b in common] == ["Fired", "Resolved"]
    assert common[0]["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] == 90
    assert [b["data"]["status"] for p, b in posted if p == "/o"] == ["Activated", "Deactivated"]
    alerts = parse_alert_state((tmp_path / STATE_FILE_NAME).read_text())
    assert [(a.condition, a.alert_id) for a in alerts] == [("Resolved", "id0")]


def test_a_restart_does_not_notify_again(tmp_path: Path) -> None:
    async def scenario(store: MetricStore, evaluator: Any) -> None:
        e = evaluator()
        e.tick(T0 + 1)
        write(store, T0 + 60, 95)
        assert e.tick(T0 + 60) == ["alert mem fired (2 webhook(s))"]
        again = evaluator()  # monitord restarted
        again.tick(T0 + 61)
        write(store, T0 + 120, 95)
        assert again.tick(T0 + 120) == []

    assert len(run(tmp_path, scenario)) == 2


def test_a_failing_receiver_is_retried_and_gives_up(tmp_path: Path) -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(0)
        return httpx.Response(503)

    async def main() -> bool:
        sender = WebhookSender(1, 3, 0.01, httpx.MockTransport(handler))
        ok = await sender.send("h", "http://hook/x?token=secret", {"a": 1})
        await sender.close()
        return ok

    assert asyncio.run(main()) is False
    assert len(calls) == 3


def test_consecutive_windows_do_not_share_a_point(tmp_path: Path) -> None:
    c = AlertCriterion("c1", "evictedkeys", "Microsoft.Cache/redisEnterprise", "GreaterThan", 0, "Total")
    rule = MetricAlert("s", "rg", "evict", 3, True, (CACHE,), "PT1M", "PT1M", (c,))

    async def scenario(store: MetricStore, evaluator: Any) -> None:
        (tmp_path / "rules.json").write_text(render_alert_rules([WatchedRule(rule, watched().webhooks)]))
        e = evaluator()
        e.tick(T0 + 1)
        store.write(T0 + 60, {CACHE.lower(): {("evictedkeys", ()): 5}})
        assert e.tick(T0 + 60.5) == ["alert evict fired (2 webhook(s))"]
        store.write(T0 + 120, {CACHE.lower(): {("evictedkeys", ()): 0}})
        # The point at T0+60 belongs to the first window only: the second one's Total is 0.
        assert e.tick(T0 + 120.5) == ["alert evict resolved (2 webhook(s))"]

    run(tmp_path, scenario)
