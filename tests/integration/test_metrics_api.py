"""Azure Monitor metrics of a real amr over HTTPS, read with the official azure-mgmt-monitor SDK
unchanged and with ``amr monitor metrics list``: `amr monitord` samples a cache every second; after
exactly N SETs and M GETs (hits and misses known) ``metrics.list`` gives back exactly those Sets,
Gets, hits and misses, and still does samples later (nothing counted twice). A 24 h PT1M query has
1,440 points per series, without a value before the cache existed. Bad input is an ARM 400 that says
what to fix, a cache that does not exist a 404."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.monitor import MonitorManagementClient

from tests.integration.amr_service import AmrService, create_cache, running_service, wait_until

COUNTED = ("setcommands", "getcommands", "cachehits", "cachemisses")
SETS, HITS, MISSES = 40, 25, 9
TRUTH = {"setcommands": SETS, "getcommands": HITS + MISSES, "cachehits": HITS, "cachemisses": MISSES}


@dataclass
class Cache:
    service: AmrService
    monitor: MonitorManagementClient
    client: redis.Redis
    id: str
    created: datetime


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service({"AMR_MONITOR_SAMPLE_INTERVAL": "1"})


@pytest.fixture(scope="module")
def cache(service: AmrService) -> Iterator[Cache]:
    creds = service.credentials
    credential = ClientSecretCredential(
        creds["tenantId"], creds["clientId"], creds["clientSecret"], authority=service.base_url,
        disable_instance_discovery=True, connection_verify=service.ca_file,
    )  # fmt: skip
    monitor = MonitorManagementClient(
        credential, service.subscription, base_url=service.base_url, connection_verify=service.ca_file
    )
    created = datetime.now(UTC)
    client = create_cache(service, "mon", "Balanced_B1", "NoCluster")
    cluster = service.amr_json("redisenterprise", "show", "--cluster-name", "mon", "-g", "rg")
    yield Cache(service, monitor, client, cluster["id"], created)
    monitor.close()


def _timespan(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


def _query(cache: Cache, aggregation: str = "Total,Count", **kwargs: Any) -> Any:
    """The counted metrics from five minutes before the cache was made to two minutes from now."""
    span = _timespan(cache.created - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=2))
    return cache.monitor.metrics.list(
        cache.id,
        timespan=span,
        interval="PT1M",
        metricnames=",".join(COUNTED),
        aggregation=aggregation,
        **kwargs,
    )


def _sums(answer: Any, field: str = "total") -> dict[str, float]:
    return {m.name.value: sum(getattr(p, field) or 0 for p in m.timeseries[0].data) for m in answer.value}


def test_sdk_reads_exact_counts_of_the_traffic(cache: Cache) -> None:
    # Two samples of the node: the second one's interval is the first counted (the first is a baseline).
    wait_until(
        lambda: _sums(_query(cache), "count")["setcommands"] >= 2, 60, what="the cache's first samples"
    )
    assert _sums(_query(cache)) == dict.fromkeys(COUNTED, 0)
    pipe = cache.client.pipeline(transaction=False)
    for i in range(SETS):
        pipe.set(f"k{i}", i)
    for i in range(HITS):
        pipe.get(f"k{i}")
    for i in range(MISSES):
        pipe.get(f"missing{i}")
    pipe.execute()
    wait_until(lambda: _sums(_query(cache)) == TRUTH, 30, what=f"the SDK's sums to reach {TRUTH}")
    samples = _sums(_query(cache), "count")["setcommands"]
    wait_until(
        lambda: _sums(_query(cache), "count")["setcommands"] >= samples + 3, 30, what="three more samples"
    )
    answer = _query(cache)
    assert _sums(answer) == TRUTH  # nothing counted twice later
    for metric in answer.value:
        assert metric.unit == "Count" and metric.timeseries[0].metadatavalues == []
        data = metric.timeseries[0].data
        assert all(p.total is None for p in data[:4])  # before the cache existed: no value, not zero


def test_cli_reads_the_same_counts(cache: Cache) -> None:
    wait_until(lambda: _sums(_query(cache)) == TRUTH, 60, what="the traffic of the test above")
    answer = cache.service.amr_json(
        "monitor", "metrics", "list", "--resource", cache.id, "--metrics", *COUNTED, "--aggregation", "Total",
        "--offset", "30m",
    )  # fmt: skip
    sums = {
        m["name"]["value"]: sum(p.get("total", 0) for p in m["timeseries"][0]["data"])
        for m in answer["value"]
    }
    assert sums == TRUTH


def test_a_day_at_one_minute_is_1440_points_per_series(cache: Cache) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    answer = cache.monitor.metrics.list(
        cache.id, timespan=_timespan(end - timedelta(hours=24), end), interval="PT1M",
        metricnames="cachehits,usedmemory,connectedclients,percentProcessorTime",
    )  # fmt: skip
    assert [m.name.value for m in answer.value] == [
        "cachehits",
        "usedmemory",
        "connectedclients",
        "percentProcessorTime",
    ]
    for metric in answer.value:
        [series] = metric.timeseries
        assert len(series.data) == 1440
        # The buckets end with the span's end rounded up to the minute (the newest one still filling).
        assert series.data[-1].time_stamp == (end + timedelta(seconds=59)).replace(second=0) - timedelta(
            minutes=1
        )
        assert all(
            p.maximum is None and p.total is None for p in series.data[:1000]
        )  # the cache did not exist

    def split_by_instance() -> list[str]:
        split = cache.monitor.metrics.list(
            cache.id, metricnames="percentProcessorTime", filter="InstanceId eq '*'", aggregation="Maximum"
        )
        return [m.name.value for s in split.value[0].timeseries for m in s.metadatavalues]

    # One series per node once the collector has sampled it (this test may run first, on a new cache).
    assert set(wait_until(split_by_instance, 30, what="a series per InstanceId")) == {"InstanceId"}


def test_definitions_and_namespaces(cache: Cache) -> None:
    names = [d.name.value for d in cache.monitor.metric_definitions.list(cache.id)]
    assert {"cachehits", "cachemisses", "getcommands", "setcommands", "usedmemorypercentage"} <= set(names)
    assert len(names) == 19
    [namespace] = list(cache.monitor.metric_namespaces.list(cache.id))
    assert namespace.properties.metric_namespace_name == "Microsoft.Cache/redisEnterprise"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"metricnames": "cachehits,hitz"}, "Unknown metric name(s) 'hitz'"),
        ({"timespan": "2026-01-01/tomorrow"}, "not an ISO 8601 time"),
        ({"interval": "PT7M"}, "use one of PT1M"),
        ({"filter": "InstanceId eq"}, "does not parse"),
        ({"aggregation": "Median"}, "Unknown aggregation 'Median'"),
    ],
)
def test_bad_input_is_an_arm_400(cache: Cache, kwargs: dict[str, str], says: str) -> None:
    with pytest.raises(HttpResponseError) as e:
        cache.monitor.metrics.list(cache.id, **{"metricnames": "connectedclients", **kwargs})
    assert e.value.status_code == 400 and says in str(e.value.message)


def test_a_cache_that_does_not_exist(cache: Cache) -> None:
    with pytest.raises(ResourceNotFoundError):
        cache.monitor.metrics.list(cache.id.replace("/mon", "/nosuchcache"), metricnames="cachehits")
