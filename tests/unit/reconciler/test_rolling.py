"""Restarts: the pure step planner (amr.logic.operations.rolling), and the runner on the fake node backend with a
real SQLite store (every step, the events it records, resuming after a crash)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.errors import NodeError
from amr.logic.operations.rolling import (
    ACTION_RESTART,
    ACTION_ROLLING_RESTART,
    ACTION_UPGRADE,
    Done,
    RestartNodes,
    RestartSnapshot,
    RollingNode,
    Switchover,
    Wait,
    choose_conflicting_operation,
    parse_info_fields,
    parse_rolling_node,
    plan_restart_step,
)
from amr.logic.outcomes import Outcome, Severity
from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, OperationStatus, ProvisioningState, ResourceState, Toggle
from amr.model.events import DatabaseEvent, EventKind, events_prefix
from amr.model.resources import Cluster, Database, Operation, Persistence, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.fake_nodes import FakeNodeBackend

PIDS = {"p": 10, "r": 20}


def primary(pid: int = 10, offset: int = 100, **kw: object) -> RollingNode:
    return RollingNode("p", 0, pid, ready=True, role="master", offset=offset, **kw)  # type: ignore[arg-type]


def replica(pid: int = 20, offset: int = 100, link_up: bool = True, **kw: object) -> RollingNode:
    return RollingNode("r", 0, pid, ready=True, role="slave", link_up=link_up, offset=offset, **kw)  # type: ignore[arg-type]


def step(*nodes: RollingNode, rolling: bool = True, cluster: bool = False, **kw: object) -> object:
    return plan_restart_step(RestartSnapshot(tuple(nodes), PIDS, rolling, cluster, **kw))  # type: ignore[arg-type]


# --- the planner -----------------------------------------------------------------------------------


def test_a_rolling_restart_goes_replica_switchover_old_primary() -> None:
    first = step(primary(), replica())
    assert isinstance(first, RestartNodes) and first.names == ("r",)
    assert "replica" in first.cause and "kept serving" in first.cause
    # The replica is back but still syncing, then behind its primary: wait.
    assert isinstance(step(primary(), replica(pid=21, link_up=False)), Wait)
    waiting = step(primary(offset=150), replica(pid=21, offset=120))
    assert isinstance(waiting, Wait) and "catching up" in waiting.reason
    # In sync: the primary hands over to it.
    assert step(primary(offset=150), replica(pid=21, offset=150)) == Switchover(0, "p", "r")
    # A switchover under way is waited for, not started again.
    assert isinstance(step(primary(handing_over=True), replica(pid=21)), Wait)
    # Roles switched: the old primary, a replica now with its old pid, is restarted.
    old = RollingNode("p", 0, 10, ready=True, role="slave", link_up=True, offset=200)
    new = RollingNode("r", 0, 21, ready=True, role="master", offset=200)
    restart_old = step(old, new)
    assert isinstance(restart_old, RestartNodes) and restart_old.names == ("p",)
    # Once it is back and in sync, the shard is done: the roles stay switched.
    back = dataclasses.replace(old, pid=11)
    done = step(back, new)
    assert isinstance(done, Done) and "kept serving" in done.summary
    assert isinstance(step(dataclasses.replace(back, link_up=False), new), Wait)


def test_a_resumed_restart_carries_on_from_what_the_nodes_say() -> None:
    # A crash after the replica's restart: its pid differs, so it is not restarted again.
    assert step(primary(), replica(pid=21)) == Switchover(0, "p", "r")


def test_an_unclear_shard_is_waited_for() -> None:
    assert isinstance(step(primary(), dataclasses.replace(replica(), role="master")), Wait)
    assert isinstance(step(primary(), RollingNode("r", 0, None)), Wait)
    assert isinstance(step(primary(), RollingNode("r", 0, 20)), Wait)  # running but not answering
    # Cluster mode: a replica whose cluster state is not ok yet is not in sync.
    assert isinstance(step(primary(), replica(pid=21, cluster_ok=False), cluster=True), Wait)
    assert step(primary(), replica(pid=21, cluster_ok=True), cluster=True) == Switchover(0, "p", "r")


def test_without_ha_the_node_is_just_restarted_and_says_where_its_data_came_from() -> None:
    alone = step(primary())
    assert isinstance(alone, RestartNodes) and alone.names == ("p",)
    assert "no persistence, so it came back empty" in alone.cause
    with_persistence = step(primary(), persistence=True)
    assert isinstance(with_persistence, RestartNodes) and "from persistence" in with_persistence.cause
    done = step(primary(pid=11))
    assert isinstance(done, Done) and "no high availability" in done.summary


def test_shards_go_one_after_another() -> None:
    s1p = RollingNode("p1", 1, 30, ready=True, role="master")
    s1r = RollingNode("r1", 1, 40, ready=True, role="slave", link_up=True)
    pids = {**PIDS, "p1": 30, "r1": 40}
    shard0_done = (
        RollingNode("p", 0, 11, ready=True, role="slave", link_up=True),
        RollingNode("r", 0, 21, ready=True, role="master"),
    )
    snapshot = RestartSnapshot((*shard0_done, s1p, s1r), pids, rolling=True, cluster_mode=True)
    assert plan_restart_step(snapshot) == RestartNodes(
        ("r1",), "rolling restart: amr restarted this replica of shard 1; its primary kept serving"
    )
    # Shard 1 waits while shard 0 is not done.
    unfinished = (primary(), replica())
    snapshot = RestartSnapshot((*unfinished, s1p, s1r), pids, rolling=True, cluster_mode=True)
    assert plan_restart_step(snapshot) == RestartNodes(("r",), plan_restart_step(snapshot).cause)  # type: ignore[union-attr]


def test_a_plain_restart_restarts_every_node_at_once() -> None:
    first = step(primary(), replica(), rolling=False)
    assert isinstance(first, RestartNodes) and first.names == ("p", "r")
    assert isinstance(step(primary(pid=11), RollingNode("r", 0, None), rolling=False), Wait)
    assert isinstance(step(primary(pid=11), replica(pid=21, link_up=False), rolling=False), Wait)
    done = step(primary(pid=11), replica(pid=21), rolling=False)
    assert isinstance(done, Done) and "at once" in done.summary


def test_an_upgrade_says_so() -> None:
    first = step(primary(), replica(), upgrade=True)
    assert isinstance(first, RestartNodes) and first.cause.startswith("upgrade:")
    done = step(
        RollingNode("p", 0, 11, ready=True, role="slave", link_up=True),
        RollingNode("r", 0, 21, ready=True, role="master"),
        upgrade=True,
    )
    assert isinstance(done, Done) and done.summary.startswith("Upgraded")


def test_parse_rolling_node_reads_role_offsets_link_and_handover() -> None:
    replica_info = parse_info_fields(
        "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
        "slave_repl_offset:4242\r\nmaster_repl_offset:4242\r\nmaster_failover_state:no-failover\r\n"
    )
    node = parse_rolling_node("r", 0, 7, ["slave", "127.0.0.2", 8500, "connected", 4242], replica_info)
    assert node == RollingNode("r", 0, 7, ready=True, role="slave", link_up=True, offset=4242)
    syncing = parse_rolling_node("r", 0, 7, [b"slave"], {**replica_info, "master_sync_in_progress": "1"})
    assert not syncing.link_up
    handing = parse_rolling_node(
        "p", 0, 8, ["master", 10, []],
        parse_info_fields({"role": "master", "master_repl_offset": 10, "master_failover_state": "waiting-for-sync"}),
        {"cluster_state": "fail"},
    )  # fmt: skip
    assert handing.role == "master" and handing.offset == 10 and handing.handing_over
    assert not handing.cluster_ok


def test_choose_conflicting_operation() -> None:
    ops = [
        Operation("1", "s", "eastus", "/x/DB", "flush", status=OperationStatus.SUCCEEDED),
        Operation("2", "s", "eastus", "/x/other", "update"),
        Operation("3", "s", "eastus", "/x/db", "rollingRestart"),
    ]
    assert choose_conflicting_operation(ops, ("/X/db",)) == ops[2]
    assert choose_conflicting_operation(ops, ("/x/db",), ("restart",)) is None
    assert choose_conflicting_operation(ops, ("/x/other", "/x/none")) == ops[1]


# --- the runner, on the fake backend ---------------------------------------------------------------

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

    def operation(self, action: str, op_id: str = "op-r", **kw: object) -> Operation:
        op = Operation(op_id, SUB, "eastus", self.db.id, action, start_time="t", **kw)  # type: ignore[arg-type]
        self.store.insert(op)
        return op

    def run(self, op: Operation, reconciler: Reconciler | None = None) -> Operation:
        """Start the restart (or, with a new reconciler, let its first tick resume it) and wait."""

        async def go() -> Operation:
            r = reconciler or self.reconciler
            if reconciler is None:
                r.start_restart(self.db, op)
            else:
                await r.tick(wait=False)
            return await self.finished(op.id)

        return asyncio.run(go())

    async def finished(self, op_id: str) -> Operation:
        """Poll until the operation is done (within the running event loop)."""
        for _ in range(2000):
            current = self.store.get(Operation, op_id)
            assert current is not None
            if current.status.done:
                return current
            await asyncio.sleep(0.005)
        raise AssertionError(f"operation {op_id} did not finish")


def _world(tmp_path: Path, policy: ClusteringPolicy, ha: bool = True, persistence: bool = False) -> World:
    settings = Settings(home=tmp_path)
    store = SqlStore.open_file(tmp_path / "amr.db")
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    store.insert(
        Cluster(
            SUB, "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED,
            high_availability=Toggle.ENABLED if ha else Toggle.DISABLED,
            provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING,
        )
    )  # fmt: skip
    db = Database(
        SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
        clustering_policy=policy, access_keys_authentication=Toggle.ENABLED,
        persistence=Persistence(aof_enabled=persistence),
        nodes=plan_nodes("dabc", 1, ha, (), [8500, 8501]),
    )  # fmt: skip
    store.insert(db)
    store.insert(Operation("op-c", SUB, "eastus", db.id, "create", start_time="t"))
    clock = FakeClock()
    backend = FakeNodeBackend()
    reconciler = Reconciler(
        settings, store, backend, CredentialMasters("pw"), lambda t: None, lambda p: True, clock.now
    )
    world = World(store, backend, clock, settings, db, reconciler)
    world.tick()  # created: the nodes run, their pids are known
    world.db = world.store.get(Database, db.key) or db
    return world


@pytest.fixture(params=[ClusteringPolicy.NO_CLUSTER, ClusteringPolicy.OSS_CLUSTER])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    w = _world(tmp_path, request.param)
    yield w
    w.store.close()


def _role(world: World, name: str) -> str:
    node = world.backend.nodes[name]
    if "cluster-enabled yes" in node.spec.config:
        return "slave" if node.primary_id else "master"
    return node.role


def test_a_rolling_restart_restarts_both_nodes_and_switches_roles(world: World) -> None:
    pids = {n: node.pid for n, node in world.backend.nodes.items()}
    op = world.run(world.operation(ACTION_ROLLING_RESTART))
    assert op.status is OperationStatus.SUCCEEDED, op.error
    assert "one at a time" in op.message
    assert op.node_pids == pids
    # Replica first, then the old primary once it had handed over.
    assert world.backend.restarts == ["dabc-0-1", "dabc-0-0"]
    assert all(world.backend.nodes[n].pid != pid for n, pid in pids.items())
    assert _role(world, "dabc-0-1") == "master" and _role(world, "dabc-0-0") == "slave"
    kinds = sorted((e.kind, e.node) for e in world.events())  # the fake clock stands still
    assert kinds == [
        (EventKind.RESTART, "dabc-0-0"),
        (EventKind.RESTART, "dabc-0-1"),
        (EventKind.SWITCHOVER, "dabc-0-1"),
    ]
    (switchover,) = [e for e in world.events() if e.kind is EventKind.SWITCHOVER]
    assert switchover.old_primary == "dabc-0-0" and switchover.new_primary == "dabc-0-1"
    # The reconciler keeps the new roles and does not tell the restarts again as crashes.
    world.tick()
    world.tick()
    assert sorted((e.kind, e.node) for e in world.events()) == kinds
    assert _role(world, "dabc-0-1") == "master"
    if not world.db.clustering_policy.cluster_mode:
        assert "replicaof" in world.backend.nodes["dabc-0-0"].spec.config


def test_a_restart_without_ha_restarts_the_node_and_says_the_data_is_gone(tmp_path: Path) -> None:
    world = _world(tmp_path, ClusteringPolicy.NO_CLUSTER, ha=False)
    op = world.run(world.operation(ACTION_ROLLING_RESTART))
    assert op.status is OperationStatus.SUCCEEDED
    assert "no high availability" in op.message and "empty" in op.message
    assert world.backend.restarts == ["dabc-0-0"]
    (event,) = world.events()
    assert event.kind is EventKind.RESTART and "no replica" in event.cause


def test_a_plain_restart_restarts_every_node(world: World) -> None:
    op = world.run(world.operation(ACTION_RESTART))
    assert op.status is OperationStatus.SUCCEEDED, op.error
    assert sorted(world.backend.restarts) == ["dabc-0-0", "dabc-0-1"]
    assert _role(world, "dabc-0-0") == "master"
    assert [e.kind for e in world.events()] == [EventKind.RESTART, EventKind.RESTART]


def test_an_interrupted_restart_is_resumed_where_it_stopped(world: World) -> None:
    pids = {n: node.pid for n, node in world.backend.nodes.items()}
    # The control plane restarted the replica, then crashed before the switchover.
    world.backend.restart("dabc-0-1")
    op = world.operation(ACTION_UPGRADE, node_pids=pids)
    flush = world.operation("flush", op_id="op-f")
    done = world.run(op, reconciler=world.new_reconciler())
    assert done.status is OperationStatus.SUCCEEDED, done.error
    assert world.backend.restarts == ["dabc-0-0"]  # the replica was not restarted again
    assert _role(world, "dabc-0-1") == "master"
    interrupted = world.store.get(Operation, flush.id)
    assert interrupted is not None and interrupted.status is OperationStatus.FAILED
    assert interrupted.error is not None and interrupted.error.code == "FlushInterrupted"


def test_a_replica_that_does_not_come_back_fails_the_restart_and_the_primary_keeps_serving(
    world: World,
) -> None:
    async def broken(name: str) -> None:
        world.backend.restarts.append(name)
        raise NodeError(f"node {name} is not running (process FATAL): engine said: bad binary")

    world.backend.restart_node = broken  # type: ignore[method-assign]
    op = world.run(world.operation(ACTION_ROLLING_RESTART))
    assert op.status is OperationStatus.FAILED and op.error is not None
    assert op.error.code == "RestartFailed"
    assert "bad binary" in op.error.message and "keeps serving" in op.error.message
    assert _role(world, "dabc-0-0") == "master"
    assert world.backend.restarts == ["dabc-0-1"]


def test_a_deleted_database_cancels_its_restart(world: World) -> None:
    current = world.store.get(Database, world.db.key)
    assert current is not None
    world.store.replace(current, dataclasses.replace(current, provisioning_state=ProvisioningState.DELETING))
    op = world.run(world.operation(ACTION_ROLLING_RESTART))
    assert op.status is OperationStatus.CANCELED
    assert world.backend.restarts == []


def test_a_new_engine_binary_is_rolled_out_by_itself(world: World) -> None:
    """engine.server_binary changed (the control plane restarted with it): the settled database gets a
    rolling upgrade of its own, one node after another, and nothing more once every node runs it."""
    world.backend.server_binary = "valkey-server-9"

    async def go() -> Operation:
        world.clock.advance(1)
        outcomes = await world.reconciler.tick()
        assert any(
            o.severity is Severity.INFO and "started a rolling upgrade" in o.message for o in outcomes
        ), outcomes
        (op,) = [o for o in world.store.list(Operation) if o.action == "upgrade"]
        return await world.finished(op.id)

    done = asyncio.run(go())
    assert done.status is OperationStatus.SUCCEEDED, done.error
    assert {n.binary for n in world.backend.nodes.values()} == {"valkey-server-9"}
    assert sorted(world.backend.restarts) == sorted(n.name for n in world.db.nodes)
    world.tick()
    assert [o.action for o in world.store.list(Operation)].count("upgrade") == 1


def test_no_upgrade_starts_while_another_operation_runs(world: World) -> None:
    world.operation("flush", op_id="op-f")
    world.backend.server_binary = "valkey-server-9"
    world.tick()
    assert [o for o in world.store.list(Operation) if o.action == "upgrade"] == []
