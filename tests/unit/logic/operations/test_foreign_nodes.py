"""Finding nodes amr did not create in a clustered database's cluster, planning their removal, and
the database state that tells the cluster's health."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from amr.logic.operations.events import plan_foreign_node_events
from amr.logic.operations.foreign_nodes import (
    UNHEALTHY_PREFIX,
    BumpEpoch,
    ClusterForget,
    ForeignNode,
    choose_foreign_nodes,
    plan_foreign_node_repair,
    plan_health_status,
    validate_cluster_health,
)
from amr.logic.operations.node_actions import AddSlots
from amr.logic.operations.node_state import ObservedNode
from amr.logic.operations.plan import plan_database_actions, plan_node_targets
from amr.logic.topology.resharding import ClusterNodeLine
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState
from amr.model.events import EventKind
from amr.model.node import ProcessState
from tests.unit.logic.operations.plan_fixtures import CLUSTER, ENV, KEYS, database, synced_cluster

TARGETS = plan_node_targets(database(), CLUSTER, ENV)
PRIMARY, REPLICA = TARGETS
FOREIGN = "f" * 40


def line(
    node_id: str, epoch: int = 0, slots: range = range(0), primary: str | None = None
) -> ClusterNodeLine:
    return ClusterNodeLine(
        node_id=node_id,
        address="127.0.0.2:9999@19999",
        flags=frozenset({"master" if primary is None else "slave"}),
        primary_id=primary,
        config_epoch=epoch,
        slots=frozenset(slots),
    )


def healthy() -> dict[str, ObservedNode]:
    """The synced primary/replica pair, each knowing the other in its CLUSTER NODES lines."""
    observed = synced_cluster(TARGETS)
    observed[PRIMARY.spec.name] = dataclasses.replace(
        observed[PRIMARY.spec.name], cluster_nodes=(line("R", primary="P"),)
    )
    observed[REPLICA.spec.name] = dataclasses.replace(
        observed[REPLICA.spec.name], cluster_nodes=(line("P", 1, range(16384)),)
    )
    return observed


def with_foreign(
    observed: dict[str, ObservedNode], name: str, *lines: ClusterNodeLine, **changes: object
) -> None:
    seen = observed[name]
    observed[name] = dataclasses.replace(seen, cluster_nodes=seen.cluster_nodes + lines, **changes)


def attacked() -> dict[str, ObservedNode]:
    """The foreign node took every slot with epoch 1000: the primary serves none, the cluster is
    still 'ok' (full coverage is not required), and only the primary met it so far."""
    observed = healthy()
    with_foreign(
        observed,
        PRIMARY.spec.name,
        line(FOREIGN, 1000, range(16384)),
        cluster_slots_assigned=0,
        cluster_slot_ranges=(),
    )
    return observed


# --- which ids are foreign -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "observed", "expected"),
    [
        ("healthy", healthy(), ()),
        (
            "known by the primary only",
            attacked(),
            (ForeignNode(FOREIGN, "127.0.0.2:9999@19999", 1000, ((0, 16383),), (PRIMARY.spec.name,)),),
        ),
        (
            "an own node's id unknown: nothing is called foreign",
            {
                **attacked(),
                REPLICA.spec.name: dataclasses.replace(healthy()[REPLICA.spec.name], cluster_id=None),
            },
            (),
        ),
        (
            "not observed at all",
            {PRIMARY.spec.name: attacked()[PRIMARY.spec.name]},
            (),
        ),
    ],
)
def test_choose_foreign_nodes(
    case: str, observed: dict[str, ObservedNode], expected: tuple[ForeignNode, ...]
) -> None:
    assert choose_foreign_nodes(TARGETS, observed) == expected, case


def test_a_foreign_node_seen_by_two_nodes_is_described_by_the_newest_view_and_its_followers() -> None:
    observed = healthy()
    with_foreign(observed, PRIMARY.spec.name, line(FOREIGN, 7, range(0, 10)))
    with_foreign(observed, REPLICA.spec.name, line(FOREIGN, 9, range(0, 20)), cluster_primary_id=FOREIGN)
    (node,) = choose_foreign_nodes(TARGETS, observed)
    assert (node.config_epoch, node.slots) == (9, ((0, 19),))
    assert node.known_by == (PRIMARY.spec.name, REPLICA.spec.name)
    assert node.followed_by == (REPLICA.spec.name,)


# --- the repair ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "known_by", "followed_by", "expected"),
    [
        ("nothing foreign", None, (), []),
        (
            "every node that knows it forgets it, then the primary bumps its epoch",
            ("primary", "replica"),
            (),
            [
                ClusterForget(PRIMARY.spec, FOREIGN),
                ClusterForget(REPLICA.spec, FOREIGN),
                BumpEpoch(PRIMARY.spec),
            ],
        ),
        (
            "a node that replicates it cannot forget it",
            ("primary", "replica"),
            ("replica",),
            [ClusterForget(PRIMARY.spec, FOREIGN), BumpEpoch(PRIMARY.spec)],
        ),
        ("nobody can forget it: no repair, the state tells", ("replica",), ("replica",), []),
    ],
)
def test_plan_foreign_node_repair(
    case: str, known_by: tuple[str, ...] | None, followed_by: tuple[str, ...], expected: list[object]
) -> None:
    names = {"primary": PRIMARY.spec.name, "replica": REPLICA.spec.name}
    foreign = (
        ()
        if known_by is None
        else (
            ForeignNode(
                FOREIGN,
                "a",
                1000,
                ((0, 16383),),
                tuple(names[n] for n in known_by),
                tuple(names[n] for n in followed_by),
            ),
        )
    )
    assert plan_foreign_node_repair(TARGETS, healthy(), foreign) == expected, case


def test_the_repair_replaces_the_topology_planning_until_the_foreign_node_is_forgotten() -> None:
    observed = attacked()
    foreign = choose_foreign_nodes(TARGETS, observed)
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, TARGETS, observed, KEYS, "", foreign)
    # No ADDSLOTS yet: the primary still sees the foreigner serve the slots, so it would refuse.
    assert actions == [ClusterForget(PRIMARY.spec, FOREIGN), BumpEpoch(PRIMARY.spec)]
    # Forgotten: the slots nobody serves go back to the shard of the planned layout.
    forgotten = healthy()
    forgotten[PRIMARY.spec.name] = dataclasses.replace(
        forgotten[PRIMARY.spec.name], cluster_slots_assigned=0, cluster_slot_ranges=()
    )
    actions = plan_database_actions(ClusteringPolicy.OSS_CLUSTER, TARGETS, forgotten, KEYS, "", ())
    assert actions == [AddSlots(PRIMARY.spec, 0, 16383)]


# --- health and the database state ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "observed", "expected"),
    [
        ("healthy", healthy(), ()),
        (
            "foreign node serving every slot",
            attacked(),
            (
                "a node amr did not create (id " + FOREIGN + " at 127.0.0.2:9999@19999, config epoch 1000, "
                "serving slots 0-16383) is in its cluster",
                "hash slots 0-16383 are served by no node of the database",
            ),
        ),
        (
            "cluster down on the replica",
            {
                **healthy(),
                REPLICA.spec.name: dataclasses.replace(healthy()[REPLICA.spec.name], cluster_state_ok=False),
            },
            (f"{REPLICA.spec.name} reports the cluster down",),
        ),
        (
            "a node not ready: only foreign nodes are told",
            {
                **attacked(),
                REPLICA.spec.name: ObservedNode(REPLICA.spec.name, ProcessState.STARTING),
            },
            (),
        ),
    ],
)
def test_validate_cluster_health(
    case: str, observed: dict[str, ObservedNode], expected: tuple[str, ...]
) -> None:
    foreign = choose_foreign_nodes(TARGETS, observed)
    assert validate_cluster_health(TARGETS, observed, foreign) == expected, case


def test_a_foreign_node_is_told_even_while_a_node_is_not_ready() -> None:
    node = ForeignNode(FOREIGN, "a:1@2", 5, (), (PRIMARY.spec.name,), (PRIMARY.spec.name,))
    observed = {**healthy(), REPLICA.spec.name: ObservedNode(REPLICA.spec.name, ProcessState.STARTING)}
    (problem,) = validate_cluster_health(TARGETS, observed, (node,))
    assert problem.endswith(f"config epoch 5) is in its cluster; {PRIMARY.spec.name} replicates it")


RUNNING = database(provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING)
NOTE = "Balanced_B3 has 2 shards in Azure; this amr installation runs 1."


@pytest.mark.parametrize(
    ("case", "db", "problems", "state", "message"),
    [
        ("healthy stays as it is", RUNNING, (), ResourceState.RUNNING, ""),
        (
            "a problem: Updating, with the problem and the note",
            RUNNING,
            ("x is wrong",),
            ResourceState.UPDATING,
            f"{UNHEALTHY_PREFIX}: x is wrong. amr is repairing it. {NOTE}",
        ),
        (
            "healthy again: Running with the note",
            dataclasses.replace(
                RUNNING, resource_state=ResourceState.UPDATING, status_message=f"{UNHEALTHY_PREFIX}: x"
            ),
            (),
            ResourceState.RUNNING,
            NOTE,
        ),
        (
            "an operation running owns the state",
            dataclasses.replace(
                RUNNING, provisioning_state=ProvisioningState.UPDATING, resource_state=ResourceState.UPDATING
            ),
            ("x is wrong",),
            ResourceState.UPDATING,
            "",
        ),
        (
            "a failed database is left alone",
            dataclasses.replace(
                RUNNING,
                provisioning_state=ProvisioningState.FAILED,
                resource_state=ResourceState.UPDATE_FAILED,
            ),
            ("x is wrong",),
            ResourceState.UPDATE_FAILED,
            "",
        ),
    ],
)
def test_plan_health_status(
    case: str, db: object, problems: tuple[str, ...], state: ResourceState, message: str
) -> None:
    assert isinstance(db, type(RUNNING))
    updated = plan_health_status(
        db, problems, NOTE if problems or db.resource_state is not ResourceState.RUNNING else ""
    )
    assert (updated.resource_state, updated.status_message) == (state, message), case
    assert updated.provisioning_state is db.provisioning_state


# --- the event -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repaired", "says"),
    [(True, "every node of the database forgot it"), (False, "it was still there at the end of this pass")],
)
def test_a_repair_event_names_each_foreign_node(repaired: bool, says: str) -> None:
    now = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
    nodes = (
        ForeignNode("a" * 40, "127.0.0.2:1@2", 3, ((0, 5),), ("n1",)),
        ForeignNode("b" * 40, "127.0.0.2:3@4", 4, (), ("n1",)),
    )
    events = plan_foreign_node_events("k", "/id", nodes, repaired, now)
    assert [e.kind for e in events] == [EventKind.REPAIR, EventKind.REPAIR]
    assert len({e.id for e in events}) == 2
    assert all(e.node is None for e in events)
    assert "a" * 40 in events[0].cause and "serving slots 0-5" in events[0].cause
    assert "b" * 40 in events[1].cause and "serving slots" not in events[1].cause
    assert all(says in e.cause for e in events)
