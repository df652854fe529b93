"""Validation rules: names, SKUs, TLS, persistence, create-only and one-way changes."""

from __future__ import annotations

import dataclasses

import pytest

from amr.errors import ArmError, Conflict
from amr.logic.arm.validation import (
    DatabaseRequestExtras,
    validate_cluster_change,
    validate_cluster_name,
    validate_database_change,
    validate_database_create,
    validate_database_name,
    validate_group_name,
    validate_minimum_tls,
    validate_not_busy,
    validate_persistence,
    validate_sku,
)
from amr.model.enums import ClusteringPolicy, TlsVersion, Toggle
from amr.model.resources import Cluster, Database, Persistence

CLUSTER = Cluster("sub", "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED)
DB = Database("sub", "rg", "c1", "d1", 10000, "pk", "sk")
NO_EXTRAS = DatabaseRequestExtras()


@pytest.mark.parametrize("name", ["a", "A1", "cache-1", "a-b-c", "x" * 60, "123"])
def test_valid_cluster_names(name: str) -> None:
    validate_cluster_name(name)


@pytest.mark.parametrize("name", ["", "-bad", "bad-", "a--b", "x" * 61, "bad_name", "a.b", "a b", "é"])
def test_invalid_cluster_names(name: str) -> None:
    with pytest.raises(ArmError) as e:
        validate_cluster_name(name)
    assert e.value.status == 400 and e.value.code == "InvalidParameter"
    assert "1-60" in e.value.message and e.value.target == "clusterName"


@pytest.mark.parametrize("name", ["rg", "rg-1", "rg_1", "rg.1", "(rg)", "x" * 90, "Ünicode"])
def test_valid_group_names(name: str) -> None:
    validate_group_name(name)


@pytest.mark.parametrize("name", ["", "rg!", "rg*", "rg/x", "ends.", "x" * 91, "a b"])
def test_invalid_group_names(name: str) -> None:
    with pytest.raises(ArmError) as e:
        validate_group_name(name)
    assert (e.value.code, e.value.status) == ("InvalidResourceGroupName", 400)


def test_database_name_must_be_default() -> None:
    validate_database_name("default")
    for name in ("db1", "Default", "default2", ""):
        with pytest.raises(ArmError, match="'default'"):
            validate_database_name(name)


@pytest.mark.parametrize("name", ["Balanced_B0", "MemoryOptimized_M10", "ComputeOptimized_X700"])
def test_in_memory_skus_are_accepted(name: str) -> None:
    assert validate_sku(name).name == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Balanced_B7", ["not valid", "Balanced_B5"]),
        ("enterprise_e10", ["legacy"]),
        ("", ["not valid"]),
        ("FlashOptimized_A250", ["FlashOptimized", "in-memory"]),
        ("Enterprise_E10", ["legacy"]),
        ("EnterpriseFlash_F300", ["legacy"]),
    ],
)
def test_other_skus_are_refused(name: str, words: list[str]) -> None:
    with pytest.raises(ArmError) as e:
        validate_sku(name)
    assert e.value.status == 400 and e.value.target == "sku.name"
    for word in words:
        assert word in e.value.message
    assert "FlashOptimized_A250" not in e.value.message or name.startswith("Flash")


def test_only_tls_1_2() -> None:
    validate_minimum_tls(TlsVersion.V1_2)
    for version in (TlsVersion.V1_0, TlsVersion.V1_1):
        with pytest.raises(ArmError, match="1.2"):
            validate_minimum_tls(version)


def test_cluster_changes() -> None:
    validate_cluster_change(CLUSTER, dataclasses.replace(CLUSTER, sku_name="Balanced_B1", tags={"a": "b"}))
    validate_cluster_change(CLUSTER, dataclasses.replace(CLUSTER, location="East US"))  # same place
    off = dataclasses.replace(CLUSTER, high_availability=Toggle.DISABLED)
    validate_cluster_change(off, CLUSTER)  # enabling is allowed
    with pytest.raises(ArmError, match="highAvailability") as e:
        validate_cluster_change(CLUSTER, off)
    assert e.value.target == "properties.highAvailability"
    with pytest.raises(ArmError, match="location"):
        validate_cluster_change(CLUSTER, dataclasses.replace(CLUSTER, location="westus"))


@pytest.mark.parametrize(
    "persistence",
    [Persistence(), Persistence(aof_enabled=True), Persistence(rdb_enabled=True)],
)
def test_valid_persistence(persistence: Persistence) -> None:
    validate_persistence(persistence)


def test_aof_and_rdb_together_are_refused() -> None:
    with pytest.raises(ArmError, match="aofEnabled and rdbEnabled"):
        validate_persistence(Persistence(aof_enabled=True, rdb_enabled=True))


def test_database_create() -> None:
    validate_database_create(DB, NO_EXTRAS)
    with pytest.raises(ArmError) as e:
        validate_database_create(DB, DatabaseRequestExtras(modules=("RediSearch", "RedisJSON")))
    assert e.value.code == "NotSupported" and "RediSearch, RedisJSON" in e.value.message
    with pytest.raises(ArmError) as e:
        validate_database_create(DB, DatabaseRequestExtras(geo_replication=True))
    assert e.value.code == "NotSupported" and e.value.target == "properties.geoReplication"
    with pytest.raises(ArmError, match="persistence"):
        validate_database_create(
            dataclasses.replace(DB, persistence=Persistence(aof_enabled=True, rdb_enabled=True)), NO_EXTRAS
        )


def test_database_changes_allowed() -> None:
    validate_database_change(DB, dataclasses.replace(DB, eviction_policy=DB.eviction_policy), NO_EXTRAS)
    validate_database_change(
        DB, dataclasses.replace(DB, access_keys_authentication=Toggle.ENABLED, persistence=Persistence(True)),
        NO_EXTRAS,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("new", "extras", "code", "target"),
    [
        (dataclasses.replace(DB, port=10001), NO_EXTRAS, "InvalidParameter", "properties.port"),
        (DB, DatabaseRequestExtras(modules=("RediSearch",)), "InvalidParameter", "properties.modules"),
        (DB, DatabaseRequestExtras(geo_replication=True), "InvalidParameter", "properties.geoReplication"),
        (
            dataclasses.replace(DB, clustering_policy=ClusteringPolicy.ENTERPRISE_CLUSTER),
            NO_EXTRAS,
            "InvalidParameter",
            "properties.clusteringPolicy",
        ),
        (
            dataclasses.replace(DB, clustering_policy=ClusteringPolicy.NO_CLUSTER),
            NO_EXTRAS,
            "InvalidParameter",
            "properties.clusteringPolicy",
        ),
    ],
    ids=["port", "modules", "geo", "oss-to-enterprise", "oss-to-nocluster"],
)
def test_database_changes_refused(
    new: Database, extras: DatabaseRequestExtras, code: str, target: str
) -> None:
    with pytest.raises(ArmError) as e:
        validate_database_change(DB, new, extras)
    assert (e.value.code, e.value.target, e.value.status) == (code, target, 400)


@pytest.mark.parametrize("new", [ClusteringPolicy.OSS_CLUSTER, ClusteringPolicy.ENTERPRISE_CLUSTER])
def test_clustering_change_from_nocluster_is_allowed(new: ClusteringPolicy) -> None:
    current = dataclasses.replace(DB, clustering_policy=ClusteringPolicy.NO_CLUSTER)
    validate_database_change(current, dataclasses.replace(DB, clustering_policy=new), NO_EXTRAS)


def test_busy_resource_is_conflict() -> None:
    validate_not_busy("cache", "c1", False, "Succeeded")
    with pytest.raises(Conflict) as e:
        validate_not_busy("cache", "c1", True, "Updating")
    assert e.value.status == 409 and "Updating" in e.value.message and "retry" in e.value.message


def test_sku_names_match_without_case_and_come_back_in_catalogue_spelling() -> None:
    assert validate_sku("balanced_b0").name == "Balanced_B0"
