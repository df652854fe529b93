"""The Azure Monitor metrics routes in process, over a metric store written here as `amr monitord`
writes it: definitions and namespaces in Azure's shapes, a metrics query's buckets (gaps without a
value), InstanceId splitting, and ARM 400/404 errors that say what to fix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from amr.logic.metrics.azure import METRICS
from amr.monitor.main import STORE_FILE_NAME
from amr.monitor.store import MetricStore
from tests.unit.api.api_harness import CLUSTER, Api, create_cluster

INSIGHTS = CLUSTER + "/providers/Microsoft.Insights"
NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC).timestamp()  # the FakeClock's time
HOUR = "2025-07-01T11:00:00Z/2025-07-01T12:00:00Z"


@pytest.fixture
def filled(api: Api, tmp_path: Any) -> Api:
    """A cache whose store has 10 s points of cachehits (1 each) and connectedclients on two gateway
    workers for the hour before now, except 11:20 to 11:30 (amr stopped)."""
    create_cluster(api)
    store = MetricStore(tmp_path / "monitor" / STORE_FILE_NAME)
    for t in range(int(NOW) - 3600 + 10, int(NOW) + 1, 10):
        if NOW - 2400 <= t < NOW - 1800:
            continue
        store.write(t, {CLUSTER.lower(): {("cachehits", ()): 1, ("connectedclients", ("gateway-0",)): 2,
                                          ("connectedclients", ("gateway-1",)): 5}})  # fmt: skip
    store.close()
    return api


def get(api: Api, path: str, **params: str) -> Any:
    r = api.client.get(f"{INSIGHTS}/{path}?{urlencode({'api-version': '2024-02-01', **params})}")
    return r.status_code, r.json()


def test_definitions_have_every_metric_in_azures_shape(api: Api) -> None:
    create_cluster(api)
    status, body = get(api, "metricDefinitions")
    assert status == 200
    assert [d["name"]["value"] for d in body["value"]] == [m.name for m in METRICS]
    hits = body["value"][0]
    assert hits["id"] == f"{CLUSTER}/providers/microsoft.insights/metricdefinitions/cachehits"
    assert (hits["unit"], hits["primaryAggregationType"], hits["namespace"]) == (
        "Count", "Total", "Microsoft.Cache/redisEnterprise"
    )  # fmt: skip
    assert hits["metricAvailabilities"][0] == {"timeGrain": "PT1M", "retention": "P30D"}
    assert body["value"][5]["dimensions"] == [{"value": "InstanceId", "localizedValue": "InstanceId"}]


def test_namespaces(api: Api) -> None:
    create_cluster(api)
    status, body = get(api, "metricNamespaces")
    assert status == 200
    assert body["value"][0]["properties"] == {"metricNamespaceName": "Microsoft.Cache/redisEnterprise"}


def test_an_hour_at_one_minute_with_a_gap(filled: Api) -> None:
    status, body = get(
        filled, "metrics", metricnames="cachehits", timespan=HOUR, interval="PT1M", aggregation="Total"
    )
    assert status == 200, body
    assert (body["timespan"], body["interval"], body["namespace"]) == (
        HOUR,
        "PT1M",
        "Microsoft.Cache/redisEnterprise",
    )
    [metric] = body["value"]
    assert metric["id"] == f"{INSIGHTS}/metrics/cachehits" and metric["unit"] == "Count"
    [series] = metric["timeseries"]
    assert series["metadatavalues"] == []
    data = series["data"]
    assert len(data) == 60 and data[0]["timeStamp"] == "2025-07-01T11:00:00Z"
    assert [d.get("total") for d in data[20:30]] == [None] * 10  # the gap: no value, not zero
    assert "total" not in data[25] and data[25]["timeStamp"] == "2025-07-01T11:25:00Z"
    assert data[0]["total"] == 5  # 11:00:10 to 11:00:50 (11:00:00 is the sample before the hour)
    assert sum(d.get("total", 0) for d in data) == 5 + 49 * 6


def test_split_by_instance_and_top(filled: Api) -> None:
    status, body = get(filled, "metrics", metricnames="connectedclients", timespan=HOUR, interval="PT1H",
                       aggregation="Maximum", **{"$filter": "InstanceId eq '*'"}, orderby="Maximum desc", top="1")  # fmt: skip
    assert status == 200, body
    [series] = body["value"][0]["timeseries"]
    assert series["metadatavalues"] == [{"name": {"value": "InstanceId", "localizedValue": "InstanceId"},
                                         "value": "gateway-1"}]  # fmt: skip
    assert series["data"] == [{"timeStamp": "2025-07-01T11:00:00Z", "maximum": 5.0}]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"metricnames": "cachehits,nosuchmetric"}, "Unknown metric name(s) 'nosuchmetric'"),
        ({"timespan": "yesterday"}, "is not start/end in ISO 8601"),
        ({"interval": "PT2M"}, "use one of PT1M"),
        ({"aggregation": "Sum"}, "Unknown aggregation 'Sum'"),
        ({"$filter": "InstanceId = 'x'"}, "does not parse"),
        ({"$filter": "InstanceId eq '*'"}, "cachehits has no dimension InstanceId"),
    ],
)
def test_bad_input_is_a_400_that_says_what_to_fix(filled: Api, params: dict[str, str], says: str) -> None:
    status, body = get(filled, "metrics", **params)
    assert status == 400
    assert body["error"]["code"] == "BadRequest" and says in body["error"]["message"]


def test_a_cache_that_does_not_exist(api: Api) -> None:
    create_cluster(api)
    for path in ("metrics", "metricDefinitions", "metricNamespaces"):
        r = api.client.get(
            CLUSTER.replace("cache1", "nope") + f"/providers/Microsoft.Insights/{path}?api-version=2024-02-01"
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_api_versions_of_the_official_clients(filled: Api) -> None:
    for version in ("2018-01-01", "2024-02-01", "2017-12-01-preview"):
        assert filled.client.get(f"{INSIGHTS}/metrics?api-version={version}").status_code == 200
    assert filled.client.get(f"{INSIGHTS}/metrics?api-version=2099-01-01").status_code == 400
