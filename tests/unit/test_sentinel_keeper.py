"""The reconciler keeps Sentinel's monitors: on a fake node backend, a fake Sentinel and a real SQLite
store, what each tick sends to Sentinel as databases are created, switched over, failed over by
Sentinel and deleted."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.errors import NodeError
from amr.ha.sentinel_periods import keep_sentinel_periods
from amr.logic.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, Operation, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.reconciler.sentinel import SentinelKeeper
from amr.settings import HaSettings, Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNodeBackend
from amr.testing.fake_sentinel import FakeMonitor, FakeSentinel

SUB = "sub-1"
SECRET = "admin-pw-secret"
NAME = "amr-dabc"


@dataclasses.dataclass
class World:
    store: SqlStore
    backend: FakeNodeBackend
    sentinel: FakeSentinel
    reconciler: Reconciler
    outcomes: list[str] = dataclasses.field(default_factory=list)

    def tick(self) -> list[str]:
        return asyncio.run(self.reconciler.tick())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings(home=tmp_path, ha=HaSettings(down_after_ms=1500, failover_timeout_ms=9000))
    store = SqlStore.open_file(tmp_path / "amr.db")
    backend = FakeNodeBackend()
    sentinel = FakeSentinel()
    keeper = SentinelKeeper(settings, store, backend, sentinel, "amr-admin", SECRET)
    reconciler = Reconciler(
        settings, store, backend, SECRET, lambda table: None, lambda port: True, sentinel=keeper
    )
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    yield World(store, backend, sentinel, reconciler)
    store.close()


def _create(
    world: World, policy: ClusteringPolicy = ClusteringPolicy.NO_CLUSTER, ha: bool = True
) -> Database:
    world.store.insert(
        Cluster(
            SUB, "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED,
            high_availability=Toggle.ENABLED if ha else Toggle.DISABLED,
            provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING,
        )
    )  # fmt: skip
    db = Database(
        SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
        clustering_policy=policy, nodes=plan_nodes("dabc", 1, ha, (), [8500, 8501]),
    )  # fmt: skip
    world.store.insert(db)
    world.store.insert(Operation("op1", SUB, "eastus", db.id, "create", start_time="t"))
    world.outcomes = world.tick()  # creates the nodes, then keeps Sentinel
    return db


def test_a_new_ha_nocluster_database_is_monitored_at_its_primary(world: World) -> None:
    _create(world)
    outcomes = world.outcomes
    assert f"sentinel monitors {NAME} at 127.0.0.2:8500" in outcomes
    monitor = world.sentinel.monitors[NAME]
    assert (monitor.host, monitor.port, monitor.quorum) == ("127.0.0.2", 8500, 1)
    assert monitor.options == {
        "down-after-milliseconds": "1500",
        "failover-timeout": "9000",
        "parallel-syncs": "1",
        "auth-user": "amr-admin",
        "auth-pass": SECRET,
    }
    assert SECRET not in " ".join(outcomes)
    world.sentinel.commands.clear()
    assert world.tick() == []
    assert world.sentinel.commands == []  # in sync: nothing sent


@pytest.mark.parametrize(
    ("policy", "ha"),
    [(ClusteringPolicy.OSS_CLUSTER, True), (ClusteringPolicy.ENTERPRISE_CLUSTER, True),
     (ClusteringPolicy.NO_CLUSTER, False)],
)  # fmt: skip
def test_other_databases_are_not_monitored(world: World, policy: ClusteringPolicy, ha: bool) -> None:
    _create(world, policy, ha)
    world.tick()
    assert world.sentinel.monitors == {}


def test_a_switchover_behind_sentinels_back_moves_the_monitor(world: World) -> None:
    _create(world)
    world.tick()
    world.backend.promote("dabc-0-1")  # FAILOVER sent to the engine, not through Sentinel
    outcomes = world.tick()
    assert f"sentinel no longer monitors {NAME}: the primary moved from 127.0.0.2:8500" in outcomes
    assert f"sentinel monitors {NAME} at 127.0.0.2:8501" in outcomes
    assert world.sentinel.monitors[NAME].port == 8501
    assert world.sentinel.monitors[NAME].options["auth-pass"] == SECRET


def test_a_failover_by_sentinel_is_left_to_it(world: World) -> None:
    _create(world)
    world.tick()
    # Sentinel is failing over: the replica is already promoted, Sentinel has not switched yet.
    world.backend.kill("dabc-0-0")
    world.backend.promote("dabc-0-1")
    world.sentinel.monitors[NAME].flags |= {"s_down", "o_down", "failover_in_progress"}
    world.sentinel.commands.clear()
    world.tick()
    assert world.sentinel.commands == []
    assert world.sentinel.monitors[NAME].port == 8500
    # Sentinel finished (+switch-master): its view and the nodes agree, nothing to do.
    world.sentinel.fail_over(NAME, 8501)
    world.sentinel.monitors[NAME].flags = {"master"}
    world.tick()
    assert [c for c in world.sentinel.commands if c[0] != "SET"] == []


def test_an_unclear_primary_leaves_the_monitor_alone(world: World) -> None:
    _create(world)
    world.tick()
    world.backend.nodes["dabc-0-1"].role = "master"  # an old primary came back as master: two masters
    world.sentinel.commands.clear()
    world.tick()
    assert world.sentinel.commands == []


def test_a_deleted_database_leaves_sentinel_before_its_nodes_stop(world: World) -> None:
    db = _create(world)
    world.tick()
    order: list[str] = []
    remove, remove_node = world.sentinel.remove, world.backend.remove_node

    async def remove_spy(name: str) -> bool:
        order.append(f"sentinel remove {name}")
        return await remove(name)

    async def remove_node_spy(name: str, directory: str) -> None:
        order.append(f"remove node {name}")
        await remove_node(name, directory)

    world.sentinel.remove = remove_spy  # type: ignore[method-assign]
    world.backend.remove_node = remove_node_spy  # type: ignore[method-assign]
    saved = world.store.get(Database, db.key)
    assert saved is not None
    world.store.replace(
        saved,
        dataclasses.replace(
            saved, provisioning_state=ProvisioningState.DELETING, resource_state=ResourceState.DELETING
        ),
    )
    world.tick()
    assert world.sentinel.monitors == {}
    assert order[0] == f"sentinel remove {NAME}"
    assert "remove node dabc-0-0" in order and "remove node dabc-0-1" in order
    assert world.store.get(Database, db.key) is None


def test_an_unreachable_sentinel_holds_up_deletes_but_not_ticks(world: World) -> None:
    db = _create(world)
    world.tick()
    world.sentinel.unreachable = True
    assert world.tick() == []
    saved = world.store.get(Database, db.key)
    assert saved is not None
    world.store.replace(
        saved,
        dataclasses.replace(
            saved, provisioning_state=ProvisioningState.DELETING, resource_state=ResourceState.DELETING
        ),
    )
    with pytest.raises(NodeError, match="not running"):
        world.tick()  # logged by the reconciler's loop; the delete is retried at the next tick
    assert world.store.get(Database, db.key) is not None
    assert "dabc-0-0" in world.backend.nodes
    world.sentinel.unreachable = False
    world.tick()
    assert world.store.get(Database, db.key) is None
    assert world.sentinel.monitors == {}


def test_leftover_monitors_are_removed_and_an_operators_are_kept(world: World) -> None:
    world.sentinel.monitors["amr-dgone"] = FakeMonitor("127.0.0.2", 8600, 1)
    world.sentinel.monitors["mymaster"] = FakeMonitor("127.0.0.2", 6379, 1)
    outcomes = world.tick()
    assert "sentinel no longer monitors amr-dgone: no HA NoCluster database by that name" in outcomes
    assert sorted(world.sentinel.monitors) == ["mymaster"]


def test_a_monitor_without_its_credentials_is_not_left_behind(world: World) -> None:
    world.sentinel.fail_set = True
    _create(world)
    assert world.sentinel.monitors == {}  # added, SET failed, removed again
    world.sentinel.fail_set = False
    world.tick()
    assert world.sentinel.monitors[NAME].options["auth-pass"] == SECRET


def test_settings_changes_reach_existing_monitors(world: World) -> None:
    _create(world)
    world.tick()
    world.sentinel.monitors[NAME].options["down-after-milliseconds"] = "30000"
    outcomes = world.tick()
    assert outcomes == [f"sentinel monitor {NAME} set down-after-milliseconds 1500"]


def test_sentinels_periods_are_shortened_and_set_again_after_it_restarts(world: World) -> None:
    world.tick()
    assert world.sentinel.periods == {"info-period": 500, "ping-period": 250}
    sent = len(world.sentinel.commands)
    world.tick()
    assert len(world.sentinel.commands) == sent  # nothing to do while they hold
    world.sentinel.periods = {"info-period": 10000, "ping-period": 1000}  # a restarted Sentinel
    world.tick()
    assert world.sentinel.periods == {"info-period": 500, "ping-period": 250}


def test_amr_ha_shortens_the_periods_of_a_sentinel_that_lost_them(caplog: pytest.LogCaptureFixture) -> None:
    sentinel = FakeSentinel()
    sentinel.unreachable = True

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(keep_sentinel_periods(sentinel, stop, interval=0.01))
        for _ in range(100):  # Sentinel not up yet: told once, asked again
            if sentinel.refused >= 2:
                break
            await asyncio.sleep(0.01)
        assert sentinel.refused >= 2
        sentinel.unreachable = False
        for _ in range(100):
            if sentinel.periods == {"info-period": 500, "ping-period": 250}:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    with caplog.at_level("INFO"):
        asyncio.run(go())
    assert sentinel.periods == {"info-period": 500, "ping-period": 250}
    assert sum("cannot reach Sentinel" in r.message for r in caplog.records) == 1
