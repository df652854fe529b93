"""Driving a Reconciler on the fakes: one tick, or ticks until a condition holds; and the cluster and
database records the reconciler tests start from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from amr.logic.outcomes import Outcome
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, Operation
from amr.reconciler.loop import Reconciler
from amr.store.repository import SqlStore


async def tick_until(reconciler: Reconciler, done: Callable[[], bool], ticks: int = 40) -> None:
    """Tick until ``done``, at most ``ticks`` times, in one event loop: background work the
    reconciler starts (a slot migration task) lives across ticks and runs between them."""
    for _ in range(ticks):
        await reconciler.tick()
        if done():
            return
        await asyncio.sleep(0.01)  # lets the background task run; bounded by ``ticks``
    raise AssertionError("did not converge")


SUB = "sub-1"


def _cluster(
    store: SqlStore, ha: bool = True, state: ProvisioningState = ProvisioningState.SUCCEEDED
) -> Cluster:
    cluster = Cluster(
        SUB,
        "rg",
        "c1",
        "eastus",
        "Balanced_B0",
        Toggle.ENABLED,
        high_availability=Toggle.ENABLED if ha else Toggle.DISABLED,
        provisioning_state=state,
        resource_state=ResourceState.RUNNING,
    )
    store.insert(cluster)
    return cluster


def _database(store: SqlStore, policy: ClusteringPolicy, ha: bool = True) -> Database:
    db = Database(
        SUB,
        "rg",
        "c1",
        uid="dabc",
        port=10000,
        primary_key="k1",
        secondary_key="k2",
        clustering_policy=policy,
        access_keys_authentication=Toggle.ENABLED,
        nodes=plan_nodes("dabc", 1, ha, (), [8500, 8501]),
    )
    store.insert(db)
    store.insert(Operation("op1", SUB, "eastus", db.id, "create", start_time="t"))
    return db


def _tick(reconciler: Reconciler) -> list[Outcome]:
    return asyncio.run(reconciler.tick())
