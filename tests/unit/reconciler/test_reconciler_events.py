"""The history the reconciler records, on the fake node backend and a real SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.logic.outcomes import Outcome, Severity
from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.events import DatabaseEvent, EventKind, NodePids, events_prefix
from amr.model.resources import Cluster, Database, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.fake_nodes import FakeNodeBackend

SUB = "sub-1"


@dataclasses.dataclass
class World:
    store: SqlStore
    backend: FakeNodeBackend
    clock: FakeClock
    settings: Settings
    db: Database
    reconciler: Reconciler

    def new_reconciler(self) -> Reconciler:
        """A restarted control plane over the same store and nodes."""
        return Reconciler(
            self.settings,
            self.store,
            self.backend,
            CredentialMasters("pw"),
            lambda t: None,
            lambda p: True,
            self.clock.now,
        )

    def tick(self, reconciler: Reconciler | None = None) -> list[Outcome]:
        self.clock.advance(1)
        return asyncio.run((reconciler or self.reconciler).tick())

    def events(self) -> list[DatabaseEvent]:
        return self.store.list(DatabaseEvent, events_prefix(self.db.key))


@pytest.fixture(params=[ClusteringPolicy.NO_CLUSTER, ClusteringPolicy.OSS_CLUSTER])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    settings = Settings(home=tmp_path)
    store = SqlStore.open_file(tmp_path / "amr.db")
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    store.insert(
        Cluster(
            SUB, "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED,
            provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING,
        )
    )  # fmt: skip
    db = Database(
        SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
        clustering_policy=request.param, access_keys_authentication=Toggle.ENABLED,
        nodes=plan_nodes("dabc", 1, True, (), [8500, 8501]),
    )  # fmt: skip
    store.insert(db)
    clock = FakeClock()
    backend = FakeNodeBackend()
    reconciler = Reconciler(
        settings, store, backend, CredentialMasters("pw"), lambda t: None, lambda p: True, clock.now
    )
    w = World(store, backend, clock, settings, db, reconciler)
    w.tick()  # created
    w.db = store.get(Database, db.key) or db
    assert w.db.provisioning_state is ProvisioningState.SUCCEEDED
    yield w
    store.close()


def test_creating_and_steady_ticks_record_nothing(world: World) -> None:
    world.tick()
    world.tick()
    assert world.events() == []


def test_a_supervisor_restart_of_a_node_is_a_restart_event_with_both_pids(world: World) -> None:
    old = world.backend.nodes["dabc-0-1"].pid
    new = world.backend.restart("dabc-0-1")
    world.tick()
    (event,) = world.events()
    assert event.kind is EventKind.RESTART
    assert (event.node, event.shard, event.old_pid, event.new_pid) == ("dabc-0-1", 0, old, new)
    assert event.time == world.clock.now().isoformat()
    world.tick()
    assert len(world.events()) == 1  # told once


def test_starting_a_dead_node_is_a_recovery(world: World) -> None:
    old = world.backend.nodes["dabc-0-0"].pid
    world.backend.kill("dabc-0-0")
    world.tick()
    (event,) = world.events()
    assert event.kind is EventKind.RECOVERY
    assert event.node == "dabc-0-0"
    assert event.old_pid == old and event.new_pid == world.backend.nodes["dabc-0-0"].pid
    assert "absent" in event.cause


def test_a_drifted_setting_is_a_repair(world: World) -> None:
    world.backend.nodes["dabc-0-1"].config["maxmemory-policy"] = "allkeys-lru"
    world.tick()
    (event,) = world.events()
    assert (event.kind, event.node) == (EventKind.REPAIR, "dabc-0-1")
    assert "maxmemory-policy was 'allkeys-lru'" in event.cause


def test_an_update_the_user_asked_for_is_no_repair(world: World) -> None:
    from amr.model.enums import EvictionPolicy

    world.store.replace(
        world.db,
        dataclasses.replace(
            world.db,
            eviction_policy=EvictionPolicy.NO_EVICTION,
            provisioning_state=ProvisioningState.UPDATING,
        ),
    )
    world.tick()
    world.tick()
    assert world.events() == []


def test_a_regenerated_key_is_no_repair(world: World) -> None:
    # The key is stored; the next tick applies it before the API's own apply_database does.
    world.store.replace(world.db, dataclasses.replace(world.db, primary_key="k3"))
    world.tick()
    assert world.events() == []


def test_a_restarted_control_plane_adopts_running_nodes_without_events(world: World) -> None:
    world.tick(world.new_reconciler())
    assert world.events() == []


def test_nodes_restarted_while_the_control_plane_was_away_are_recoveries(world: World) -> None:
    stored = world.store.get(NodePids, world.db.key)
    assert stored is not None and set(stored.pids) == {"dabc-0-0", "dabc-0-1"}
    old = world.backend.nodes["dabc-0-0"].pid
    new = world.backend.restart("dabc-0-0")  # e.g. amr stop / amr serve: started again by the supervisor
    world.tick(world.new_reconciler())
    (event,) = world.events()
    assert (event.kind, event.node, event.old_pid, event.new_pid) == (
        EventKind.RECOVERY,
        "dabc-0-0",
        old,
        new,
    )
    assert "control plane was not running" in event.cause


def test_events_are_pruned_to_the_newest(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import amr.logic.operations.events as logic_events

    monkeypatch.setattr(logic_events.plan_events_to_prune, "__defaults__", (3,))
    for _ in range(5):
        world.backend.restart("dabc-0-0")
        world.tick()
    events = world.events()
    assert len(events) == 3
    assert [e.new_pid for e in events] == sorted(e.new_pid or 0 for e in events)
    assert events[-1].new_pid == world.backend.nodes["dabc-0-0"].pid


def test_deleting_the_database_removes_its_history(world: World) -> None:
    world.backend.restart("dabc-0-0")
    world.tick()
    assert world.events()
    world.store.replace(
        world.db, dataclasses.replace(world.db, provisioning_state=ProvisioningState.DELETING)
    )
    world.tick()
    assert world.store.get(Database, world.db.key) is None
    assert world.store.list(DatabaseEvent) == []
    assert world.store.list(NodePids) == []


def test_an_unanswering_supervisor_forgets_no_pids(world: World) -> None:
    from amr.errors import NodeError

    stored = world.store.get(NodePids, world.db.key)
    assert stored is not None

    async def refuse(name: str) -> object:
        raise NodeError("supervisord refused getProcessInfo: SHUTDOWN_STATE")

    real = world.backend.node_status
    world.backend.node_status = refuse  # type: ignore[method-assign,assignment]
    world.tick()
    world.backend.node_status = real  # type: ignore[method-assign]
    assert world.store.get(NodePids, world.db.key) == stored
    # Started again while the supervisor was away: first seen by a new control plane.
    world.backend.restart("dabc-0-1")
    reconciler = world.new_reconciler()
    world.tick(reconciler)
    assert [e.kind for e in world.events()] == [EventKind.RECOVERY]
    world.backend.restart("dabc-0-1")  # now seen running by this control plane: a restart
    world.tick(reconciler)
    assert [e.kind for e in world.events()] == [EventKind.RECOVERY, EventKind.RESTART]


def test_a_correction_that_does_not_hold_is_not_told_every_tick(world: World) -> None:
    from amr.testing import fake_nodes

    node = world.backend.nodes["dabc-0-1"]
    node.config["maxmemory-policy"] = "allkeys-lru"
    real = fake_nodes.FakeAdmin.execute

    async def stubborn(self: fake_nodes.FakeAdmin, *args: str | int | bytes) -> object:
        if [str(a).upper() for a in args[:2]] == ["CONFIG", "SET"]:
            return "OK"  # accepted but not applied: the drift stays
        return await real(self, *args)

    world.settings = dataclasses.replace(
        world.settings, engine=dataclasses.replace(world.settings.engine, start_timeout=0.01)
    )
    reconciler = world.new_reconciler()
    fake_nodes.FakeAdmin.execute = stubborn  # type: ignore[method-assign]
    try:
        outcomes = world.tick(reconciler) + world.tick(reconciler)
    finally:
        fake_nodes.FakeAdmin.execute = real  # type: ignore[method-assign]
    assert any(
        o.message.startswith("unhealthy database") and o.severity is Severity.WARNING and not o.changed_state
        for o in outcomes
    ), outcomes
    assert world.events() == []


def _failovers(world: World) -> list[DatabaseEvent]:
    return [e for e in world.events() if e.kind in (EventKind.FAILOVER, EventKind.SWITCHOVER)]


def test_a_promotion_after_the_primary_died_is_a_failover_with_old_and_new_primary(world: World) -> None:
    old, new = (n.name for n in world.db.nodes)
    world.backend.restart(old)  # killed; the supervisor restarted it ...
    world.backend.promote(new)  # ... and its replica was promoted meanwhile
    world.tick()
    (event,) = _failovers(world)
    assert (event.kind, event.old_primary, event.new_primary, event.shard) == (
        EventKind.FAILOVER,
        old,
        new,
        0,
    )
    assert old in event.cause and "went down" in event.cause
    world.tick()
    assert len(_failovers(world)) == 1  # told once
    stored = world.store.get(NodePids, world.db.key)
    assert stored is not None and stored.primaries == {"0": new}


def test_a_promotion_while_the_old_primary_kept_running_is_a_switchover(world: World) -> None:
    old, new = (n.name for n in world.db.nodes)
    world.backend.promote(new)
    world.tick()
    (event,) = _failovers(world)
    assert (event.kind, event.old_primary, event.new_primary) == (EventKind.SWITCHOVER, old, new)


def test_a_failover_while_the_control_plane_was_away_is_told_when_it_is_back(world: World) -> None:
    old, new = (n.name for n in world.db.nodes)
    world.tick()
    world.backend.restart(old)
    world.backend.promote(new)
    world.tick(world.new_reconciler())
    (event,) = _failovers(world)
    assert (event.kind, event.old_primary, event.new_primary) == (EventKind.FAILOVER, old, new)


def test_a_switchover_amr_made_itself_is_told_once(world: World) -> None:
    old, new = (n.name for n in world.db.nodes)
    world.backend.promote(new)
    world.reconciler._events.record_switchover(world.db, 0, old, new, "rolling restart")
    world.tick()
    (event,) = _failovers(world)
    assert (event.kind, event.cause) == (EventKind.SWITCHOVER, "rolling restart")
