"""One reconcile pass of a database decided from one snapshot (amr.logic.operations.database_pass)."""

from __future__ import annotations

import dataclasses

from amr.logic.operations.database_pass import DatabaseSnapshot, plan_database_pass, plan_node_locations
from amr.logic.operations.node_actions import EnsureNode, WaitReady
from amr.logic.operations.node_state import ObservedNode
from amr.logic.operations.plan import plan_node_targets
from amr.logic.topology.resharding import ClusterNodeLine
from amr.model.node import ProcessState, Role
from tests.unit.logic.operations.failover_fixtures import CLUSTER, ENV, NOC, OSS, database, switched_cluster


def test_a_pass_plans_on_the_roles_the_nodes_have_now() -> None:
    db = database(OSS)
    plan = plan_database_pass(DatabaseSnapshot(db, CLUSTER, ENV, switched_cluster(db), {}))
    roles = {t.spec.name: t.spec.role for t in plan.targets}
    assert roles == {"d1-0-0": Role.REPLICA, "d1-0-1": Role.PRIMARY}
    assert plan.clear_primaries == {0: "d1-0-1"}
    assert plan.foreign == ()
    assert plan.actions == ()  # the failover is accepted, never undone


def test_on_an_unclear_picture_the_last_clear_primary_stays() -> None:
    db = database(NOC)
    down = {n.name: ObservedNode(n.name, ProcessState.STOPPED) for n in db.nodes}
    plan = plan_database_pass(DatabaseSnapshot(db, CLUSTER, ENV, down, {0: "d1-0-1"}))
    assert plan.targets == plan_node_targets(db, CLUSTER, ENV, {0: "d1-0-1"})
    assert plan.clear_primaries == {}
    assert plan.actions == tuple(a for t in plan.targets for a in (EnsureNode(t.spec), WaitReady(t.spec)))


def test_no_foreign_nodes_are_looked_for_while_slots_migrate() -> None:
    db = database(OSS)
    stranger = ClusterNodeLine("X", "127.0.0.2:8600@18600", frozenset({"master"}), None, 9, frozenset())
    switched = switched_cluster(db)
    observed = {name: dataclasses.replace(seen, cluster_nodes=(stranger,)) for name, seen in switched.items()}
    settled = plan_database_pass(DatabaseSnapshot(db, CLUSTER, ENV, observed, {}))
    assert [f.node_id for f in settled.foreign] == ["X"]
    moving = dataclasses.replace(ENV, moving_slots=True)
    assert plan_database_pass(DatabaseSnapshot(db, CLUSTER, moving, observed, {})).foreign == ()


def test_locations_say_where_nodes_are_and_nothing_to_run() -> None:
    db = database(OSS)
    targets = plan_node_targets(db, CLUSTER, ENV)
    for location, target in zip(plan_node_locations(db, ENV), targets, strict=True):
        assert (location.name, location.socket, location.directory, location.port) == (
            target.spec.name, target.spec.socket, target.spec.directory, target.spec.port,
        )  # fmt: skip
        assert location.database_uid == target.spec.database_uid and location.config == ""
