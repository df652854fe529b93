"""Metric alerts end to end: rules and action groups made with azure-mgmt-monitor unchanged over
HTTPS, evaluated by `amr monitord` (sampling every second, the evaluation clock shortened ten times by
``monitor.alert_time_scale``: PT1M is 6 s) over a real cache, posted to webhook receivers this test
runs. Filling a 0.5 GB cache past its memory fires ``usedmemorypercentage > 50`` and
``evictedkeys > 0`` with the common alert schema (essentials, alertContext with the metric value);
FLUSHALL resolves both, and again with the API stopped. One receiver hangs: the other rule's notification (and the other receiver
of the same rule) arrive on time all the same. Fired alerts are listed by the API and the CLI. Bad
rules are ARM 400s."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from azure.core.exceptions import HttpResponseError
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import (
    ActionGroupPatchBody,
    ActionGroupResource,
    MetricAlertAction,
    MetricAlertResource,
    MetricAlertResourcePatch,
    MetricAlertSingleResourceMultipleMetricCriteria,
    MetricCriteria,
    WebhookReceiver,
)

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import (
    AmrService,
    cache_client,
    monitor_client,
    running_service,
    wait_until,
)

FREQUENCY = 6.0  # PT1M at monitor.alert_time_scale 0.1
HANG = 60  # seconds monitord waits for the receiver that does not answer


@dataclass
class Receiver:
    """The test's webhook server: every POST by path with its arrival time; ``/hang`` never answers
    until the test ends."""

    posts: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, _, b in self.posts if p == path]

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            found.posts.append((self.path, time.time(), body))
            if self.path == "/hang":
                found.release.wait(2 * HANG)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    found.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service({
        "AMR_MONITOR_SAMPLE_INTERVAL": "1", "AMR_MONITOR_ALERT_TIME_SCALE": "0.1",
        "AMR_MONITOR_WEBHOOK_TIMEOUT": str(HANG), "AMR_MONITOR_WEBHOOK_BACKOFF": "1",
    })  # fmt: skip


@pytest.fixture(scope="module")
def monitor(service: AmrService) -> Iterator[MonitorManagementClient]:
    client = monitor_client(service)
    yield client
    client.close()


@pytest.fixture(scope="module")
def cache(service: AmrService) -> tuple[str, redis.Redis]:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "al", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy",
        "NoCluster", "--high-availability", "Disabled", "--eviction-policy", "AllKeysRandom",
    )  # fmt: skip
    cluster = service.amr_json("redisenterprise", "show", "--cluster-name", "al", "-g", "rg")
    return cluster["id"], cache_client(service, "al")


def group(monitor: MonitorManagementClient, name: str, receivers: dict[str, str]) -> str:
    hooks = [
        WebhookReceiver(name=n, service_uri=u, use_common_alert_schema=True) for n, u in receivers.items()
    ]
    made = monitor.action_groups.create_or_update(
        "rg",
        name,
        ActionGroupResource(location="Global", group_short_name=name, enabled=True, webhook_receivers=hooks),
    )
    return str(made.id)


def rule(
    cache_id: str, metric: str, aggregation: str, threshold: float, groups: list[str]
) -> MetricAlertResource:
    criterion = MetricCriteria(name="c1", metric_name=metric, metric_namespace="Microsoft.Cache/redisEnterprise",
                               operator="GreaterThan", threshold=threshold, time_aggregation=aggregation)  # fmt: skip
    return MetricAlertResource(
        location="global", description=f"{metric} too high", severity=2, enabled=True, scopes=[cache_id],
        evaluation_frequency="PT1M", window_size="PT1M", auto_mitigate=True,
        criteria=MetricAlertSingleResourceMultipleMetricCriteria(all_of=[criterion]),
        actions=[MetricAlertAction(action_group_id=g) for g in groups],
    )  # fmt: skip


def conditions(receiver: Receiver, path: str, rule_name: str) -> list[str]:
    return [
        b["data"]["essentials"]["monitorCondition"]
        for b in receiver.bodies(path)
        if b["data"]["essentials"]["alertRule"] == rule_name
    ]


def test_alerts_fire_and_resolve_and_a_hanging_webhook_delays_no_one(
    service: AmrService, monitor: MonitorManagementClient, cache: tuple[str, redis.Redis], receiver: Receiver
) -> None:
    cache_id, client = cache
    ops = group(monitor, "ops", {"good": receiver.url("/good")})
    slow = group(monitor, "slow", {"hang": receiver.url("/hang")})
    monitor.metric_alerts.create_or_update(
        "rg", "memory-high", rule(cache_id, "usedmemorypercentage", "Average", 50, [slow, ops])
    )
    monitor.metric_alerts.create_or_update(
        "rg", "evictions", rule(cache_id, "evictedkeys", "Total", 0, [ops])
    )
    got = monitor.metric_alerts.get("rg", "memory-high")
    assert (
        got.criteria.all_of[0].metric_name == "usedmemorypercentage" and got.window_size.total_seconds() == 60
    )
    assert [g.name for g in monitor.action_groups.list_by_resource_group("rg")] == ["ops", "slow"]
    wait_until(lambda: (service.home / "monitor" / "alert-rules.json").exists(), 30, what="rules published")

    fill(client)
    filled = time.time()
    assert client.info("stats")["evicted_keys"] > 0

    wait_until(lambda: "Fired" in conditions(receiver, "/good", "evictions"), 40, what="evictions fired")
    wait_until(lambda: "Fired" in conditions(receiver, "/good", "memory-high"), 40, what="memory fired")
    arrivals = {b["data"]["essentials"]["alertRule"]: t for p, t, b in receiver.posts if p == "/good"}
    # Fired within a frequency of the condition (plus room for a busy machine), far less than the
    # 60 s the /hang receiver holds its POST (monitor.webhook_timeout): it delayed nothing.
    assert max(arrivals.values()) - filled < FREQUENCY + 20 < HANG, arrivals
    assert any(p == "/hang" for p, _, _ in receiver.posts) and not receiver.release.is_set()

    fired = next(b for b in receiver.bodies("/good") if b["data"]["essentials"]["alertRule"] == "memory-high")
    assert fired["schemaId"] == "azureMonitorCommonAlertSchema"
    e = fired["data"]["essentials"]
    assert (e["severity"], e["signalType"], e["monitoringService"]) == ("Sev2", "Metric", "Platform")
    assert e["alertTargetIDs"] == [cache_id.lower()] and e["firedDateTime"]
    [criterion] = fired["data"]["alertContext"]["condition"]["allOf"]
    assert criterion["metricName"] == "usedmemorypercentage" and criterion["metricValue"] > 50
    evicted = next(b for b in receiver.bodies("/good") if b["data"]["essentials"]["alertRule"] == "evictions")
    assert evicted["data"]["alertContext"]["condition"]["allOf"][0]["metricValue"] > 0

    listed = service.amr_json("monitor", "alert", "list", "--state", "Fired")
    assert sorted(a["name"] for a in listed) == ["evictions", "memory-high"]

    client.flushall()
    wait_until(lambda: "Resolved" in conditions(receiver, "/good", "memory-high"), 40, what="memory resolved")
    wait_until(
        lambda: "Resolved" in conditions(receiver, "/good", "evictions"), 40, what="evictions resolved"
    )
    resolved = [
        b for b in receiver.bodies("/good") if b["data"]["essentials"]["monitorCondition"] == "Resolved"
    ]
    assert all(b["data"]["essentials"]["resolvedDateTime"] for b in resolved)
    assert conditions(receiver, "/good", "memory-high") == ["Fired", "Resolved"]  # one of each, no repeats
    assert service.amr_json("monitor", "alert", "list", "--state", "Fired") == []
    # The SDK's update (PATCH) and listing by subscription.
    disabled = monitor.metric_alerts.update("rg", "memory-high", MetricAlertResourcePatch(enabled=False))
    assert disabled.enabled is False and disabled.criteria.all_of[0].threshold == 50
    assert monitor.action_groups.update("rg", "slow", ActionGroupPatchBody(enabled=False)).enabled is False
    assert sorted(r.name for r in monitor.metric_alerts.list_by_subscription()) == [
        "evictions",
        "memory-high",
    ]
    monitor.metric_alerts.delete("rg", "memory-high")
    monitor.metric_alerts.delete("rg", "evictions")


def fill(client: redis.Redis) -> None:
    """600 MB into the 0.5 GB cache: used memory near 100 %, keys evicted."""
    value = b"x" * (1 << 20)
    for batch in range(12):
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.set(f"big:{batch}:{i}", value)
        pipe.execute()


def test_alerts_fire_and_resolve_with_the_api_stopped(
    service: AmrService, monitor: MonitorManagementClient, cache: tuple[str, redis.Redis], receiver: Receiver
) -> None:
    cache_id, client = cache
    ops = group(monitor, "ops", {"good": receiver.url("/good")})
    monitor.metric_alerts.create_or_update(
        "rg", "evictions-down", rule(cache_id, "evictedkeys", "Total", 0, [ops])
    )
    rules = service.home / "monitor" / "alert-rules.json"
    wait_until(lambda: "evictions-down" in rules.read_text(), 30, what="the rule published")
    supervisor = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)
    supervisor.call_sync("stopProcess", "api", True)
    try:
        fill(client)
        wait_until(
            lambda: conditions(receiver, "/good", "evictions-down") == ["Fired"], 40, what="fired, API down"
        )
        client.flushall()
        wait_until(lambda: conditions(receiver, "/good", "evictions-down") == ["Fired", "Resolved"], 40,
                   what="resolved, API down")  # fmt: skip
    finally:
        supervisor.call_sync("startProcess", "api", True)
    # Running is not yet listening: the API answers a moment after its process starts.
    wait_until(lambda: service.amr("group", "show", "-n", "rg").returncode == 0, 30, what="the API back")
    listed = service.amr_json("monitor", "alert", "list", "--state", "Resolved")
    assert "evictions-down" in [a["name"] for a in listed]
    monitor.metric_alerts.delete("rg", "evictions-down")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"scopes": ["/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/none"]},
         "not a cache"),
        ({"window_size": timedelta(minutes=2)}, "PT5M"),
    ],
)  # fmt: skip
def test_bad_rules_are_400s(
    service: AmrService,
    monitor: MonitorManagementClient,
    cache: tuple[str, redis.Redis],
    change: dict[str, Any],
    says: str,
) -> None:
    body = rule(cache[0], "usedmemorypercentage", "Average", 80, [])
    for key, value in change.items():
        setattr(
            body,
            key,
            [v.format(sub=service.subscription) for v in value] if isinstance(value, list) else value,
        )
    with pytest.raises(HttpResponseError) as raised:
        monitor.metric_alerts.create_or_update("rg", "bad", body)
    assert raised.value.status_code == 400 and says in str(raised.value)


def test_a_webhook_that_is_not_http_is_a_400(monitor: MonitorManagementClient) -> None:
    with pytest.raises(HttpResponseError) as raised:
        group(monitor, "bad", {"x": "ftp://example.com/hook"})
    assert raised.value.status_code == 400 and "http or https" in str(raised.value)
