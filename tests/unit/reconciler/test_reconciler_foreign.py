"""The reconciler against a node amr did not create in a clustered database's cluster (fake nodes):
it is forgotten on every node, a repair event names it, and the database reports Updating with
why until a later pass finds the cluster clean."""

from __future__ import annotations

from amr.model.enums import ClusteringPolicy, ResourceState
from amr.model.events import DatabaseEvent, EventKind, events_prefix
from amr.model.resources import Database
from tests.unit.reconciler.reconciler_ticks import _cluster, _database, _tick

FOREIGN = "f" * 40


def test_a_foreign_node_is_forgotten_told_in_the_state_and_recorded(world) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.OSS_CLUSTER)
    _tick(reconciler)
    primary, replica = backend.nodes["dabc-0-0"], backend.nodes["dabc-0-1"]
    epochs = (primary.epoch, replica.epoch)
    primary.known.add(FOREIGN)  # listed by the primary, failed, as a node that met it and left

    outcomes = _tick(reconciler)

    assert FOREIGN not in primary.known and FOREIGN not in replica.known
    assert any("ClusterForget(dabc-0-0)" in o.message for o in outcomes), outcomes
    assert primary.epoch > max(epochs)  # the primary bumped its epoch; the replica is no primary
    saved = store.get(Database, db.key)
    assert saved is not None
    # The pass that removed it does not call the cluster healthy: the next one confirms.
    assert saved.resource_state is ResourceState.UPDATING
    assert saved.status_message.startswith("The database's cluster is not healthy: a node amr did not create")
    assert FOREIGN in saved.status_message
    (event,) = [e for e in store.list(DatabaseEvent, events_prefix(db.key)) if e.kind is EventKind.REPAIR]
    assert FOREIGN in event.cause and "every node of the database forgot it" in event.cause
    assert event.node is None

    _tick(reconciler)
    saved = store.get(Database, db.key)
    assert saved is not None
    assert (saved.resource_state, saved.status_message) == (ResourceState.RUNNING, "")
    assert (
        len([e for e in store.list(DatabaseEvent, events_prefix(db.key)) if e.kind is EventKind.REPAIR]) == 1
    )


def test_a_clean_cluster_never_leaves_running(world) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    store, backend, _, reconciler = world
    _cluster(store)
    db = _database(store, ClusteringPolicy.OSS_CLUSTER)
    for _ in range(3):
        _tick(reconciler)
        saved = store.get(Database, db.key)
        assert saved is not None and saved.resource_state is ResourceState.RUNNING
    assert not [e for e in store.list(DatabaseEvent, events_prefix(db.key)) if e.kind is EventKind.REPAIR]
