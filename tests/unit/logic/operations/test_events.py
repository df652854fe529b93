"""Which events a reconcile tick records (amr.logic.operations.events), table by table."""

from __future__ import annotations

from datetime import UTC, datetime

from amr.logic.operations.events import (
    ADOPTED_RECOVERY_CAUSE,
    RESTART_CAUSE,
    NodeTick,
    event_id,
    plan_events_to_prune,
    plan_node_events,
    plan_pids_to_keep,
    plan_repairs,
)
from amr.logic.operations.node_actions import ConfigSet, EnsureNode, SetDefaultUser, WaitReady
from amr.logic.operations.node_state import ObservedNode
from amr.model.events import DatabaseEvent, EventKind
from amr.model.node import NodeSpec, ProcessState, Role

NOW = datetime(2025, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)
KEY = "sub/rg/c1/default"
ID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c1/databases/default"
RUNNING = ProcessState.RUNNING


def _plan(
    previous: dict[str, int] | None, *ticks: NodeTick, adopted: tuple[str, ...] = ()
) -> list[DatabaseEvent]:
    return plan_node_events(KEY, ID, previous, adopted, ticks, NOW)


def _spec(name: str) -> NodeSpec:
    return NodeSpec(name, "dabc", 0, Role.PRIMARY, "/d", "/s", "127.0.0.2", 8500, "")


def test_same_pid_is_no_event() -> None:
    assert _plan({"n0": 10}, NodeTick("n0", 0, RUNNING, 10, 10)) == []


def test_adopting_running_nodes_is_no_event() -> None:
    # A control plane with no memory and nothing stored (a store from before events): no restart.
    assert _plan(None, NodeTick("n0", 0, RUNNING, 10, 10), adopted=("n0",)) == []
    assert _plan({"n0": 10}, NodeTick("n0", 0, RUNNING, 10, 10), adopted=("n0",)) == []


def test_a_changed_pid_is_a_restart_with_old_and_new_pid() -> None:
    (event,) = _plan(
        {"n0": 10, "n1": 11}, NodeTick("n0", 0, RUNNING, 10, 10), NodeTick("n1", 0, RUNNING, 12, 12)
    )
    assert event.kind is EventKind.RESTART
    assert (event.node, event.shard, event.old_pid, event.new_pid) == ("n1", 0, 11, 12)
    assert event.cause == RESTART_CAUSE
    assert event.time == NOW.isoformat()
    assert event.key == f"{KEY}/events/{event.id}"
    assert event.database_id == ID


def test_a_node_coming_back_in_the_tick_is_a_restart_with_its_final_pid() -> None:
    # The supervisor was still starting it (no pid yet) when the tick first looked.
    (event,) = _plan({"n0": 10}, NodeTick("n0", 0, ProcessState.STARTING, None, 13))
    assert (event.kind, event.old_pid, event.new_pid) == (EventKind.RESTART, 10, 13)


def test_a_changed_pid_seen_first_after_a_control_plane_restart_is_a_recovery() -> None:
    (event, other) = _plan(
        {"n0": 10, "n1": 11},
        NodeTick("n0", 0, RUNNING, 20, 20),
        NodeTick("n1", 0, RUNNING, 21, 21),
        adopted=("n0",),  # n1 was seen running by this control plane already
    )
    assert (event.kind, event.old_pid, event.new_pid) == (EventKind.RECOVERY, 10, 20)
    assert event.cause == ADOPTED_RECOVERY_CAUSE
    assert (other.kind, other.node) == (EventKind.RESTART, "n1")


def test_starting_a_node_that_was_not_running_is_a_recovery() -> None:
    for state in (ProcessState.ABSENT, ProcessState.STOPPED, ProcessState.FAILED):
        (event,) = _plan({"n0": 10}, NodeTick("n0", 0, state, None, 30, started=True))
        assert (event.kind, event.old_pid, event.new_pid) == (EventKind.RECOVERY, 10, 30)
        assert state.value in event.cause


def test_a_start_that_did_not_come_up_yet_is_not_told_yet() -> None:
    assert _plan({"n0": 10}, NodeTick("n0", 0, ProcessState.ABSENT, None, None, started=True)) == []


def test_repairs_are_one_event_per_node_unless_it_was_recovered() -> None:
    events = _plan(
        {"n0": 10, "n1": 11},
        NodeTick("n0", 0, RUNNING, 10, 10, repairs=("maxmemory was '1', set back to '2'", "x")),
        NodeTick("n1", 0, ProcessState.ABSENT, None, 31, started=True, repairs=("y",)),
    )
    assert [(e.kind, e.node) for e in events] == [(EventKind.REPAIR, "n0"), (EventKind.RECOVERY, "n1")]
    assert "maxmemory was '1', set back to '2'; x" in events[0].cause


def test_event_ids_sort_in_time_order_and_tell_kind_and_node() -> None:
    early = event_id(NOW, EventKind.RESTART, "n0")
    assert early == "20250701T120000123456Z-restart-n0"
    later = event_id(datetime(2025, 7, 1, 12, 0, 1, tzinfo=UTC), EventKind.RECOVERY, "n0")
    assert early < later


def test_pids_to_keep_remember_the_latest_and_keep_old_ones_of_nodes_down() -> None:
    ticks = [NodeTick("n0", 0, RUNNING, 10, 15), NodeTick("n1", 0, ProcessState.ABSENT, None, None)]
    names = ("n0", "n1", "n2")
    assert plan_pids_to_keep({"n0": 10, "n1": 11, "n2": 12, "gone": 9}, ticks, names) == {
        "n0": 15,
        "n1": 11,
        "n2": 12,  # not observed this tick
    }


def test_prune_drops_the_oldest_beyond_the_limit() -> None:
    events = [DatabaseEvent(str(i), KEY, ID, "t", EventKind.RESTART, "c") for i in range(5)]
    assert [e.id for e in plan_events_to_prune(events, keep=3)] == ["0", "1"]
    assert plan_events_to_prune(events, keep=10) == []


def test_repairs_say_what_drifted_without_secrets() -> None:
    spec = _spec("n0")
    observed = {"n0": ObservedNode("n0", RUNNING, True, config={"maxmemory-policy": "allkeys-lru"})}
    actions = [
        EnsureNode(_spec("n1")),
        WaitReady(_spec("n1")),
        ConfigSet(spec, "maxmemory-policy", "volatile-lru"),
        SetDefaultUser(spec, ("on", ">secret-key"), disconnect_clients=False),
    ]
    repairs = plan_repairs(actions, observed)
    assert list(repairs) == ["n0"]
    assert repairs["n0"][0] == "maxmemory-policy was 'allkeys-lru', set back to 'volatile-lru'"
    assert "secret" not in " ".join(repairs["n0"])
