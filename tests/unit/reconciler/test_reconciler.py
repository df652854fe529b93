"""The reconciler's decisions and their effects, on a fake node backend and a real SQLite store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from amr.logcontext import current_log_context
from amr.logic.outcomes import Severity
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.alerts import ActionGroup, AlertCriterion, MetricAlert
from amr.model.enums import ClusteringPolicy, OperationStatus, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, Operation, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNodeBackend
from tests.unit.reconciler.reconciler_ticks import SUB, _cluster, _database, _tick


@pytest.mark.parametrize("policy", list(ClusteringPolicy))
def test_create_converges_nodes_and_completes_the_operation(world, policy: ClusteringPolicy) -> None:  # type: ignore[no-untyped-def]
    store, backend, routes, reconciler = world
    _cluster(store)
    db = _database(store, policy)
    outcomes = _tick(reconciler)
    assert any(
        o.severity is Severity.INFO and o.message.startswith(f"created database {db.id}") for o in outcomes
    )
    saved = store.get(Database, db.key)
    assert saved is not None
    assert saved.provisioning_state is ProvisioningState.SUCCEEDED
    assert saved.resource_state is ResourceState.RUNNING
    op = store.get(Operation, "op1")
    assert op is not None and op.status is OperationStatus.SUCCEEDED
    assert sorted(backend.nodes) == ["dabc-0-0", "dabc-0-1"]
    primary, replica = backend.nodes["dabc-0-0"], backend.nodes["dabc-0-1"]
    assert primary.user_on and primary.user_hashes
    if policy.cluster_mode:
        assert primary.slots == 16384
        assert replica.primary_id == primary.node_id
    ports = {r.port for r in routes[-1].routes}
    assert 10000 in ports
    assert (8500 in ports) == (policy is ClusteringPolicy.OSS_CLUSTER)


def test_running_nodes_are_adopted_not_restarted(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, reconciler = world
    _cluster(store)
    _database(store, ClusteringPolicy.OSS_CLUSTER)
    _tick(reconciler)
    pids = {n: node.pid for n, node in backend.nodes.items()}
    starts = list(backend.starts)
    # A new reconciler (a restarted API) over the same store, home and running nodes.
    again = Reconciler(
        reconciler._settings, store, backend, CredentialMasters("admin-pw"), lambda t: None, lambda p: True
    )
    assert _tick(again) == []
    assert {n: node.pid for n, node in backend.nodes.items()} == pids
    assert backend.starts == starts


def test_a_dead_node_is_restarted_and_reported(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.NO_CLUSTER)
    _tick(reconciler)
    backend.kill("dabc-0-1")
    outcomes = _tick(reconciler)
    assert any(
        o.severity is Severity.WARNING and o.message.startswith(f"repaired database {db.id}")
        for o in outcomes
    )
    assert "dabc-0-1" in backend.nodes


def test_a_node_that_fails_to_start_fails_the_operation_and_is_removed(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, routes, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.OSS_CLUSTER)
    backend.fail_start["dabc-0-1"] = "Bad directive or wrong number of arguments"

    _tick(reconciler)
    saved = store.get(Database, db.key)
    assert saved is not None
    assert saved.provisioning_state is ProvisioningState.FAILED
    assert saved.resource_state is ResourceState.CREATE_FAILED
    op = store.get(Operation, "op1")
    assert op is not None and op.status is OperationStatus.FAILED
    assert op.error is not None and "Bad directive" in op.error.message
    assert backend.nodes == {}
    assert set(backend.removed) >= {"dabc-0-0", "dabc-0-1"}
    assert all(r.port != 10000 for r in routes[-1].routes)


def test_update_applies_live_and_disabling_keys_disconnects(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.NO_CLUSTER)
    _tick(reconciler)
    pids = {n: node.pid for n, node in backend.nodes.items()}
    current = store.get(Database, db.key)
    assert current is not None
    from amr.model.enums import EvictionPolicy

    store.replace(
        current,
        dataclasses.replace(
            current,
            eviction_policy=EvictionPolicy.NO_EVICTION,
            access_keys_authentication=Toggle.DISABLED,
            provisioning_state=ProvisioningState.UPDATING,
        ),
    )
    _tick(reconciler)
    primary = backend.nodes["dabc-0-0"]
    assert primary.config["maxmemory-policy"] == "noeviction"
    assert primary.user_on is False
    assert primary.killed_default_clients == 1
    assert {n: node.pid for n, node in backend.nodes.items()} == pids


def test_group_delete_removes_clusters_databases_and_nodes(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, routes, reconciler = world
    _cluster(store)
    _database(store, ClusteringPolicy.OSS_CLUSTER)
    _tick(reconciler)
    group = store.get(ResourceGroup, f"{SUB}/rg")
    assert group is not None
    # The group's alert rules and action groups go with it.
    action_group = ActionGroup(SUB, "rg", "ops", "ops")
    store.insert(action_group)
    c = AlertCriterion("c", "evictedkeys", "Microsoft.Cache/redisEnterprise", "GreaterThan", 0, "Total")
    store.insert(
        MetricAlert(
            SUB, "rg", "r", 3, True, ("x",), "PT1M", "PT1M", (c,), action_group_ids=(action_group.id,)
        )
    )
    store.replace(group, dataclasses.replace(group, provisioning_state=ProvisioningState.DELETING))
    store.insert(Operation("op-del", SUB, "eastus", group.id, "delete", start_time="t"))
    for _ in range(4):
        _tick(reconciler)
    assert store.list(ResourceGroup) == []
    assert store.list(MetricAlert) == [] and store.list(ActionGroup) == []
    assert store.list(Cluster) == []
    assert store.list(Database) == []
    assert backend.nodes == {}
    assert routes[-1].routes == ()
    op = store.get(Operation, "op-del")
    assert op is not None and op.status is OperationStatus.SUCCEEDED


def test_delete_during_create_cancels_the_create_and_completes_the_delete(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.OSS_CLUSTER)
    store.replace(
        db,
        dataclasses.replace(
            db, provisioning_state=ProvisioningState.DELETING, resource_state=ResourceState.DELETING
        ),
    )
    store.insert(Operation("op-del", SUB, "eastus", db.id, "delete", start_time="t"))
    _tick(reconciler)
    assert store.get(Database, db.key) is None
    create, delete = store.get(Operation, "op1"), store.get(Operation, "op-del")
    assert create is not None and create.status is OperationStatus.CANCELED
    assert delete is not None and delete.status is OperationStatus.SUCCEEDED
    assert backend.nodes == {}


def test_finished_operations_are_forgotten_after_a_day(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 2, tzinfo=UTC)
    store = SqlStore.open_file(tmp_path / "amr.db")
    old = (now - timedelta(days=2)).isoformat()
    recent = (now - timedelta(hours=1)).isoformat()
    store.insert(Operation("old", SUB, "eastus", "/x", "create", OperationStatus.SUCCEEDED, old, old))
    store.insert(
        Operation("recent", SUB, "eastus", "/x", "create", OperationStatus.SUCCEEDED, recent, recent)
    )
    store.insert(Operation("running", SUB, "eastus", "/x", "create", OperationStatus.IN_PROGRESS, old))
    reconciler = Reconciler(
        Settings(home=tmp_path),
        store,
        FakeNodeBackend(),
        CredentialMasters("pw"),
        lambda t: None,
        lambda p: True,
        lambda: now,
    )
    _tick(reconciler)
    assert sorted(op.id for op in store.list(Operation)) == ["recent", "running"]
    store.close()


def test_a_create_completes_once_the_gateway_listens_on_its_port(tmp_path: Path) -> None:
    store = SqlStore.open_file(tmp_path / "amr.db")
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    checks: list[int] = []

    def listening(port: int) -> bool:
        checks.append(port)
        return len(checks) >= 3  # the gateway picks the route up a moment later

    reconciler = Reconciler(
        Settings(home=tmp_path), store, FakeNodeBackend(), CredentialMasters("pw"), lambda t: None, lambda p: True,
        port_is_listening=listening,
    )  # fmt: skip
    _cluster(store)
    db = _database(store, ClusteringPolicy.NO_CLUSTER)
    _tick(reconciler)
    saved = store.get(Database, db.key)
    assert saved is not None and saved.provisioning_state is ProvisioningState.SUCCEEDED
    assert checks == [10000, 10000, 10000]
    store.close()


def test_settling_a_database_binds_it_to_the_log_context(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.NO_CLUSTER)
    bound: list[dict[str, str]] = []
    ensure_node = backend.ensure_node

    async def recording(spec):  # type: ignore[no-untyped-def]
        bound.append(dict(current_log_context()))
        await ensure_node(spec)

    backend.ensure_node = recording
    _tick(reconciler)
    assert bound and all(b == {"database": db.id} for b in bound)
    assert current_log_context() == {}
