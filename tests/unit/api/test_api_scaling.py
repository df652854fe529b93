"""Scaling requests the API refuses, each with an ARM error that says what to fix, leaving the cache
and its database exactly as they were; and the clustering policy changes Azure allows or refuses."""

from __future__ import annotations

from typing import Any

import pytest

from amr.errors import ArmError
from amr.logic.arm.validation import validate_clustering_change
from amr.model.enums import ClusteringPolicy
from amr.model.resources import Cluster, Database
from amr.settings import GatewaySettings
from tests.unit.api.api_harness import CLUSTER, DATABASE, SUB, Api, create_cluster, create_database

OSS, EC, NOC = ClusteringPolicy.OSS_CLUSTER, ClusteringPolicy.ENTERPRISE_CLUSTER, ClusteringPolicy.NO_CLUSTER


def _records(api: Api) -> tuple[Any, Any]:
    return api.store.get(Cluster, f"{SUB}/rg1/cache1"), api.store.get(Database, f"{SUB}/rg1/cache1/default")


@pytest.mark.parametrize(
    ("sku", "code", "words"),
    [
        ("Balanced_B7", "InvalidParameter", ("Balanced_B7", "Allowed values")),
        ("FlashOptimized_A250", "InvalidParameter", ("FlashOptimized", "in-memory SKUs only")),
        ("Enterprise_E10", "InvalidParameter", ("legacy Enterprise",)),
        ("Balanced_B0", "InvalidSkuForScaling", ("do not fit", "listSkusForScaling")),
    ],
)
def test_a_refused_sku_change_leaves_the_cache_as_it_was(
    api: Api, sku: str, code: str, words: tuple[str, ...]
) -> None:
    create_cluster(api)
    create_database(api)
    api.reconciler.memory[f"{SUB}/rg1/cache1/default"] = 600 * 1024**2  # more than Balanced_B0's 0.5 GB
    before = _records(api)
    r = api.call("PATCH", CLUSTER, {"sku": {"name": sku}})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["target"] == "sku.name"
    assert all(w in error["message"] for w in words), error["message"]
    assert _records(api) == before


def test_list_skus_for_scaling_offers_only_skus_the_data_fits_in(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    api.reconciler.memory[f"{SUB}/rg1/cache1/default"] = 5 * 1024**3
    names = {s["name"] for s in api.call("POST", CLUSTER + "/listSkusForScaling").json()["skus"]}
    assert "Balanced_B3" not in names and "Balanced_B5" in names and "Balanced_B20" in names
    assert not any(n.startswith("FlashOptimized") for n in names) and "Balanced_B1" not in names


def test_any_change_while_the_cache_scales_is_a_conflict(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B3"}})
    assert r.status_code == 202 and r.json()["properties"]["resourceState"] == "Scaling"
    before = _records(api)
    for body in ({"sku": {"name": "Balanced_B5"}}, {"tags": {"a": "b"}}):
        r = api.call("PATCH", CLUSTER, body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict", r.text
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "NoEviction"}})
    assert r.status_code == 409, r.text
    assert "scaling" in r.json()["error"]["message"]
    assert _records(api) == before
    api.reconciler.settle()
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "NoEviction"}})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("current", "new", "status", "code"),
    [
        ("OSSCluster", "NoCluster", 400, "InvalidParameter"),
        ("OSSCluster", "EnterpriseCluster", 400, "InvalidParameter"),
        ("EnterpriseCluster", "OSSCluster", 400, "InvalidParameter"),
        ("EnterpriseCluster", "NoCluster", 400, "InvalidParameter"),
    ],
)
def test_clustering_policy_changes(api: Api, current: str, new: str, status: int, code: str) -> None:
    create_cluster(api)
    create_database(api, {"clusteringPolicy": current})
    before = _records(api)
    for method in ("PATCH", "PUT"):
        r = api.call(method, DATABASE, {"properties": {"clusteringPolicy": new}})
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and error["target"] == "properties.clusteringPolicy"
        assert new in error["message"]
        assert _records(api) == before


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (NOC, NOC, True),
        (OSS, OSS, True),
        (EC, EC, True),
        (NOC, OSS, True),
        (NOC, EC, True),
        (OSS, NOC, False),
        (OSS, EC, False),
        (EC, OSS, False),
    ],
)
def test_validate_clustering_change(current: ClusteringPolicy, new: ClusteringPolicy, allowed: bool) -> None:
    if allowed:
        validate_clustering_change(current, new)
    else:
        with pytest.raises(ArmError, match="only a NoCluster"):
            validate_clustering_change(current, new)


def test_more_shards_than_free_node_ports_is_refused_up_front(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    before = _records(api)
    assert before[1].shard_count == 1
    g = GatewaySettings()  # the api fixture runs with the defaults
    api.busy_ports.update(range(g.node_port_range_start, g.node_port_range_end + 1))  # nothing left
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B20"}})  # 4 shards: 3 more nodes
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "PortRangeExhausted" and "widen the range" in error["message"]
    assert _records(api) == before
    # A SKU with the same shard count needs no node port.
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B0"}})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(("method", "new"), [("PATCH", "OSSCluster"), ("PUT", "EnterpriseCluster")])
def test_nocluster_database_converts_to_a_clustered_policy(api: Api, method: str, new: str) -> None:
    create_cluster(api)
    create_database(api, {"clusteringPolicy": "NoCluster"})
    r = api.call(method, DATABASE, {"properties": {"clusteringPolicy": new}})
    assert r.status_code == (202 if method == "PATCH" else 200), r.text
    props = r.json()["properties"]
    assert (props["clusteringPolicy"], props["provisioningState"]) == (new, "Updating")
    stored = api.store.list(Database)[0]
    assert stored.clustering_policy.value == new
