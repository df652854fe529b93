"""Converting a NoCluster database to a clustered policy on the fake node backend: the reconciler
restarts the primary in cluster mode after a write pause and a snapshot, recreates the replica empty,
gives out the slots the keys did not claim, reaches the SKU's shard count, and a control plane
restarted halfway carries on from what the nodes show."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, OperationStatus, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, Operation, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNode, FakeNodeBackend
from tests.unit.reconciler.reconciler_ticks import tick_until

SUB = "sub-1"
KEYS = {f"k{i}": str(i) for i in range(300)}
P, R = "dabc-0-0", "dabc-0-1"


def _settings(tmp_path: Path, start_timeout: float = 10.0) -> Settings:
    settings = Settings(home=tmp_path)
    return dataclasses.replace(
        settings,
        engine=dataclasses.replace(settings.engine, max_shards_per_database=4, start_timeout=start_timeout),
    )


def _world(
    tmp_path: Path, sku: str, ha: bool, start_timeout: float = 10.0
) -> tuple[SqlStore, FakeNodeBackend, Reconciler]:
    settings = _settings(tmp_path, start_timeout)
    store = SqlStore.open_file(tmp_path / "amr.db")
    backend = FakeNodeBackend()
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    store.insert(Cluster(SUB, "rg", "c1", "eastus", sku, Toggle.ENABLED if ha else Toggle.DISABLED,
                         resource_state=ResourceState.RUNNING, provisioning_state=ProvisioningState.SUCCEEDED))  # fmt: skip
    ports = [8500, 8501] if ha else [8500]
    store.insert(Database(SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
                          clustering_policy=ClusteringPolicy.NO_CLUSTER, nodes=plan_nodes("dabc", 1, ha, (), ports),
                          provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING))  # fmt: skip
    return store, backend, _reconciler(settings, store, backend)


def _reconciler(settings: Settings, store: SqlStore, backend: FakeNodeBackend) -> Reconciler:
    return Reconciler(
        settings, store, backend, CredentialMasters("admin-pw"), lambda table: None, lambda port: True
    )


@pytest.fixture
def ha_b1(tmp_path: Path) -> Any:
    store, backend, reconciler = _world(tmp_path, "Balanced_B1", ha=True)
    yield store, backend, reconciler
    store.close()


def _running_nocluster(store: SqlStore, backend: FakeNodeBackend, reconciler: Reconciler) -> None:
    """The NoCluster database runs, holding KEYS (its replica a copy of them)."""
    asyncio.run(reconciler.tick())
    for node in backend.nodes.values():
        assert not node.cluster_mode
        node.keys = dict(KEYS)


def _convert(store: SqlStore, policy: ClusteringPolicy) -> None:
    db = store.list(Database)[0]
    store.replace(db, dataclasses.replace(db, clustering_policy=policy, provisioning_state=ProvisioningState.UPDATING,
                                          resource_state=ResourceState.UPDATING))  # fmt: skip
    store.insert(Operation("op-1", SUB, "eastus", db.id, "update", start_time="t"))


def _succeeded(store: SqlStore) -> bool:
    return store.list(Database)[0].provisioning_state is ProvisioningState.SUCCEEDED


def _owned(node: FakeNode) -> set[int]:
    if node.owned is not None:
        return node.owned
    return set(range(node.slot_range[0], node.slot_range[1] + 1)) if node.slots else set()


def test_ha_database_converts_primary_first_then_an_empty_replica(ha_b1: Any) -> None:
    store, backend, reconciler = ha_b1
    _running_nocluster(store, backend, reconciler)
    _convert(store, ClusteringPolicy.ENTERPRISE_CLUSTER)

    asyncio.run(tick_until(reconciler, lambda: _succeeded(store)))

    primary, replica = backend.nodes[P], backend.nodes[R]
    assert primary.cluster_mode and replica.cluster_mode
    # The primary restarted once, with its data, after writes were paused and a snapshot taken.
    assert backend.restarts == [P] and primary.saves == [True]
    assert primary.keys == KEYS
    # The replica was removed with its data and started again empty, as the primary's replica.
    assert backend.removed == [R] and replica.keys == {} and replica.primary_id == primary.node_id
    assert _owned(primary) == set(range(16384)) and _owned(replica) == set()
    assert store.get(Operation, "op-1").status is OperationStatus.SUCCEEDED  # type: ignore[union-attr]
    # Converged: another tick changes nothing.
    asyncio.run(reconciler.tick())
    assert backend.restarts == [P] and backend.removed == [R]


def test_a_restarted_control_plane_resumes_from_what_the_nodes_show(ha_b1: Any, tmp_path: Path) -> None:
    store, backend, reconciler = ha_b1
    _running_nocluster(store, backend, reconciler)
    _convert(store, ClusteringPolicy.OSS_CLUSTER)
    # The control plane converted the primary, then crashed before the replica.
    primary = backend.nodes[P]
    primary.spec = dataclasses.replace(primary.spec, config=primary.spec.config + "cluster-enabled yes\n")
    asyncio.run(backend.restart_node(P))
    assert primary.cluster_mode and not backend.nodes[R].cluster_mode

    fresh = _reconciler(_settings(tmp_path), store, backend)
    asyncio.run(tick_until(fresh, lambda: _succeeded(store)))

    assert backend.restarts == [P]  # the converted primary is not restarted again
    assert backend.removed == [R] and backend.nodes[R].cluster_mode
    assert backend.nodes[P].keys == KEYS and _owned(backend.nodes[P]) == set(range(16384))


def test_no_clear_primary_fails_the_update_with_the_reason(tmp_path: Path) -> None:
    store, backend, reconciler = _world(tmp_path, "Balanced_B1", ha=True, start_timeout=0.05)
    _running_nocluster(store, backend, reconciler)
    backend.nodes[R].role = "master"  # two primaries: whose data to keep is not clear
    _convert(store, ClusteringPolicy.OSS_CLUSTER)

    asyncio.run(
        tick_until(reconciler, lambda: store.list(Database)[0].provisioning_state is ProvisioningState.FAILED)
    )

    op = store.get(Operation, "op-1")
    assert op is not None and op.status is OperationStatus.FAILED
    assert op.error is not None and "no single primary" in op.error.message
    db = store.list(Database)[0]
    assert db.resource_state is ResourceState.UPDATE_FAILED and "no single primary" in db.status_message
    assert backend.restarts == [] and backend.removed == []  # nothing was touched


def test_a_multi_shard_sku_reaches_its_shard_count_with_every_key(tmp_path: Path) -> None:
    store, backend, reconciler = _world(tmp_path, "Balanced_B3", ha=False)
    _running_nocluster(store, backend, reconciler)
    _convert(store, ClusteringPolicy.OSS_CLUSTER)

    async def run() -> None:
        await tick_until(reconciler, lambda: _succeeded(store), ticks=80)

    asyncio.run(run())

    db = store.list(Database)[0]
    assert db.shard_count == 2 and db.status_message == ""
    primaries = [n for n in backend.nodes.values() if n.primary_id is None]
    assert len(primaries) == 2
    assert sorted((min(_owned(n)), max(_owned(n))) for n in primaries) == [(0, 8191), (8192, 16383)]
    held = {k: v for n in primaries for k, v in n.keys.items()}
    assert held == KEYS
    for n in primaries:
        assert all(key_slot(k.encode()) in _owned(n) for k in n.keys)
