"""Scaling a clustered database on the fake node backend: the reconciler adds shards, moves slots
and keys to them, drains and removes shards on a scale-in, and carries on after a failed move."""

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
from amr.testing.fake_nodes import FakeNodeBackend
from tests.unit.reconciler.reconciler_ticks import tick_until

SUB = "sub-1"
KEYS = 600


@pytest.fixture
def world(tmp_path: Path) -> Any:
    settings = Settings(home=tmp_path)
    settings = dataclasses.replace(
        settings, engine=dataclasses.replace(settings.engine, max_shards_per_database=4)
    )
    store = SqlStore.open_file(tmp_path / "amr.db")
    backend = FakeNodeBackend()
    reconciler = Reconciler(
        settings, store, backend, CredentialMasters("admin-pw"), lambda table: None, lambda port: True
    )
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    cluster = Cluster(SUB, "rg", "c1", "eastus", "Balanced_B1", Toggle.ENABLED, resource_state=ResourceState.RUNNING,
                      provisioning_state=ProvisioningState.SUCCEEDED)  # fmt: skip
    store.insert(cluster)
    db = Database(SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
                  clustering_policy=ClusteringPolicy.OSS_CLUSTER, nodes=plan_nodes("dabc", 1, True, (), [8500, 8501]))  # fmt: skip
    store.insert(db)
    yield store, backend, reconciler
    store.close()


def _scale(store: SqlStore, sku: str, op: str) -> None:
    cluster = store.list(Cluster)[0]
    store.replace(cluster, dataclasses.replace(cluster, sku_name=sku, provisioning_state=ProvisioningState.UPDATING,
                                               resource_state=ResourceState.SCALING))  # fmt: skip
    store.insert(Operation(op, SUB, "eastus", cluster.id, "update", start_time="t"))


def _layout(backend: FakeNodeBackend) -> dict[str, tuple[int, int, int]]:
    """Per primary holding slots: (first slot, last slot, keys)."""
    out = {}
    for name, node in backend.nodes.items():
        if node.primary_id is None and node.slots:
            owned = (
                node.owned
                if node.owned is not None
                else set(range(node.slot_range[0], node.slot_range[1] + 1))
            )
            assert all(key_slot(k.encode()) in owned for k in node.keys)
            out[name] = (min(owned), max(owned), len(node.keys))
    return out


def test_scale_out_then_in_moves_every_key_and_removes_the_leaving_shard(world: Any) -> None:
    store, backend, reconciler = world

    async def scenario() -> None:
        running = lambda: store.list(Cluster)[0].provisioning_state is ProvisioningState.SUCCEEDED  # noqa: E731
        await tick_until(reconciler, lambda: store.list(Database)[0].resource_state is ResourceState.RUNNING)
        backend.nodes["dabc-0-0"].keys = {f"k{i}": str(i) for i in range(KEYS)}

        _scale(store, "Balanced_B3", "op-out")
        backend.fail_migrates = 1  # the first move fails; the next round carries on from what it sees
        await tick_until(reconciler, running)
        assert store.list(Cluster)[0].resource_state is ResourceState.RUNNING
        assert backend.fail_migrates == 0  # the failed MIGRATE happened, and the scaling still finished
        assert store.get(Operation, "op-out").status is OperationStatus.SUCCEEDED  # type: ignore[union-attr]
        db = store.list(Database)[0]
        assert db.shard_count == 2 and sorted(n.name for n in db.nodes) == [
            "dabc-0-0",
            "dabc-0-1",
            "dabc-1-0",
            "dabc-1-1",
        ]
        layout = _layout(backend)
        assert {k: v[:2] for k, v in layout.items()} == {"dabc-0-0": (0, 8191), "dabc-1-0": (8192, 16383)}
        assert sum(v[2] for v in layout.values()) == KEYS and min(v[2] for v in layout.values()) > KEYS // 3
        assert backend.nodes["dabc-1-1"].primary_id == backend.nodes["dabc-1-0"].node_id

        leaving = {backend.nodes[n].node_id for n in ("dabc-1-0", "dabc-1-1")}
        _scale(store, "Balanced_B1", "op-in")
        await tick_until(reconciler, running)
        db = store.list(Database)[0]
        assert sorted(n.name for n in db.nodes) == ["dabc-0-0", "dabc-0-1"]
        assert {"dabc-1-0", "dabc-1-1"} <= set(backend.removed) and "dabc-1-0" not in backend.nodes
        assert _layout(backend) == {"dabc-0-0": (0, 16383, KEYS)}
        assert all(not (node.known & leaving) for node in backend.nodes.values())  # forgotten everywhere
        assert store.get(Operation, "op-in").status is OperationStatus.SUCCEEDED  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_restarted_control_plane_finishes_a_migration_cut_short(world: Any) -> None:
    """The first reconciler's moves all fail halfway (slots left MIGRATING/IMPORTING, keys on the
    source); a new reconciler over the same store and nodes (a restarted API) finishes the scaling."""
    store, backend, reconciler = world

    async def scenario() -> None:
        running = lambda: store.list(Cluster)[0].provisioning_state is ProvisioningState.SUCCEEDED  # noqa: E731
        await tick_until(reconciler, lambda: store.list(Database)[0].resource_state is ResourceState.RUNNING)
        backend.nodes["dabc-0-0"].keys = {f"k{i}": str(i) for i in range(KEYS)}
        _scale(store, "Balanced_B3", "op-out")
        backend.fail_migrates = 10**9
        with pytest.raises(AssertionError, match="did not converge"):
            await tick_until(reconciler, running, ticks=8)
        assert len(store.list(Database)[0].nodes) == 4 and _layout(backend) == {"dabc-0-0": (0, 16383, KEYS)}

        backend.fail_migrates = 0
        again = Reconciler(
            reconciler._settings,
            store,
            backend,
            CredentialMasters("admin-pw"),
            lambda t: None,
            lambda p: True,
        )
        await tick_until(again, running)
        layout = _layout(backend)
        assert {k: v[:2] for k, v in layout.items()} == {"dabc-0-0": (0, 8191), "dabc-1-0": (8192, 16383)}
        assert sum(v[2] for v in layout.values()) == KEYS
        assert store.get(Operation, "op-out").status is OperationStatus.SUCCEEDED  # type: ignore[union-attr]

    asyncio.run(scenario())
