"""Resharding decisions: parsing CLUSTER NODES, slot owners, target ranges, moves, stale states,
forgetting removed nodes; and the slot helpers ADDSLOTS relies on."""

from __future__ import annotations

import pytest

from amr.logic.keyspace.slots import compress_slots, plan_slot_ranges, plan_unowned_ranges
from amr.logic.topology.resharding import (
    ClusterNodeLine,
    SlotMove,
    choose_slot_owners,
    parse_cluster_nodes,
    parse_myself,
    plan_forget,
    plan_move_batches,
    plan_slot_moves,
    plan_stale_slot_states,
    plan_target_ranges,
)

NODES = (
    "aaa 127.0.0.2:7000@17000,localhost myself,master - 0 0 3 connected 0-99 200 [101->-bbb] [150-<-ccc]\n"
    "bbb 127.0.0.2:7001@17001,localhost master - 0 1 5 connected 300-399\n"
    "ccc 127.0.0.2:7002@17002,localhost slave bbb 0 1 5 connected\n"
    "ddd :0@0 handshake,noaddr - 0 0 0 disconnected\n"
)


def test_parse_cluster_nodes_reads_slots_states_and_skips_handshakes() -> None:
    lines = parse_cluster_nodes(NODES)
    assert [line.node_id for line in lines] == ["aaa", "bbb", "ccc"]
    me = parse_myself(NODES)
    assert me is not None and me.node_id == "aaa" and me.config_epoch == 3
    assert me.slots == frozenset({*range(100), 200})
    assert me.migrating == {101: "bbb"} and me.importing == {150: "ccc"}
    assert lines[2].primary_id == "bbb" and lines[1].primary_id is None
    assert parse_myself("") is None


def test_parse_cluster_nodes_keeps_nodes_without_an_address_when_asked() -> None:
    # A node whose address a new id took (it restarted as another node) still holds its slots.
    text = NODES + "eee :0@0 master,fail,noaddr - 1 1 9 disconnected 0-16383\n"
    assert [line.node_id for line in parse_cluster_nodes(text)] == ["aaa", "bbb", "ccc"]
    kept = parse_cluster_nodes(text, keep_noaddr=True)
    assert [line.node_id for line in kept] == ["aaa", "bbb", "ccc", "eee"]  # never a handshake
    assert kept[3].config_epoch == 9 and len(kept[3].slots) == 16384


def _line(slots: range | set[int], epoch: int = 1, **states: dict[int, str]) -> ClusterNodeLine:
    return ClusterNodeLine(
        "x", "", frozenset({"myself", "master"}), None, epoch, frozenset(slots),
        states.get("migrating", {}), states.get("importing", {}),
    )  # fmt: skip


def test_choose_slot_owners_prefers_the_higher_epoch_when_two_claim_a_slot() -> None:
    owners = choose_slot_owners({0: _line(range(0, 10), epoch=1), 1: _line(range(5, 12), epoch=2)})
    assert [owners[s] for s in (0, 4, 5, 9, 11)] == [0, 0, 1, 1, 1]


def _owners(layout: dict[int, tuple[int, int]]) -> dict[int, int]:
    return {s: shard for shard, (a, b) in layout.items() for s in range(a, b + 1)}


@pytest.mark.parametrize(
    ("layout", "shards", "moved", "targets"),
    [
        # 1 -> 2: shard 0 keeps the first half.
        ({0: (0, 16383)}, [0, 1], 8192, {0: (0, 8191), 1: (8192, 16383)}),
        # 2 -> 4: each old shard keeps the quarter it overlaps most; half the slots move.
        (
            {0: (0, 8191), 1: (8192, 16383)},
            [0, 1, 2, 3],
            8192,
            {0: (0, 4095), 1: (8192, 12287), 2: (4096, 8191), 3: (12288, 16383)},
        ),
        # 4 -> 1: everything on shard 0.
        (
            {0: (0, 4095), 1: (8192, 12287), 2: (4096, 8191), 3: (12288, 16383)},
            [0],
            12288,
            {0: (0, 16383)},
        ),
        # 4 -> 2: shards 2 and 3 leave.
        (
            {0: (0, 4095), 1: (8192, 12287), 2: (4096, 8191), 3: (12288, 16383)},
            [0, 1],
            8192,
            {0: (0, 8191), 1: (8192, 16383)},
        ),
        # Already even: nothing moves.
        ({0: (0, 8191), 1: (8192, 16383)}, [0, 1], 0, {0: (0, 8191), 1: (8192, 16383)}),
    ],
)
def test_plan_slot_moves_reaches_the_even_spread_with_the_least_movement(
    layout: dict[int, tuple[int, int]], shards: list[int], moved: int, targets: dict[int, tuple[int, int]]
) -> None:
    owners = _owners(layout)
    assert plan_target_ranges(owners, shards) == targets
    moves = plan_slot_moves(owners, shards)
    assert len(moves) == moved
    after = dict(owners)
    for move in moves:
        assert owners[move.slot] == move.source
        after[move.slot] = move.target
    assert sorted(compress_slots(s for s, o in after.items() if o == shard)[0] for shard in shards) == sorted(
        plan_slot_ranges(len(shards))
    )


def test_plan_slot_moves_is_stable_halfway() -> None:
    """A control plane that restarts halfway plans exactly the moves that remain."""
    owners = _owners({0: (0, 8191), 1: (8192, 16383)})
    moves = plan_slot_moves(owners, [0, 1, 2, 3])
    done, rest = moves[::2], moves[1::2]
    for move in done:
        owners[move.slot] = move.target
    assert plan_slot_moves(owners, [0, 1, 2, 3]) == sorted(rest, key=lambda m: (m.source, m.target, m.slot))


def test_plan_stale_slot_states_leaves_states_of_remaining_moves() -> None:
    views = {
        0: _line(range(10), migrating={5: "b", 6: "b"}),
        1: _line(range(10, 20), importing={5: "a", 7: "a"}),
    }
    moves = [SlotMove(5, 0, 1)]
    assert plan_stale_slot_states(views, moves) == [(0, 6), (1, 7)]


def test_plan_forget_names_ids_no_database_node_has() -> None:
    known = {"n0": ["a", "b", "x"], "n1": ["a", "b", "x", "y"]}
    assert plan_forget(known, ["a", "b"]) == [("n0", "x"), ("n1", "x"), ("n1", "y")]
    assert plan_forget(known, ["a", "b", "x", "y"]) == []


def test_plan_move_batches_groups_pairs_in_bounded_batches() -> None:
    moves = [SlotMove(s, 0, 1) for s in range(5)] + [SlotMove(9, 0, 2)]
    batches = plan_move_batches(moves, 2)
    assert [[m.slot for m in b] for b in batches] == [[0, 1], [2, 3], [4], [9]]


@pytest.mark.parametrize(
    ("wanted", "owned", "free"),
    [
        ((0, 99), [], [(0, 99)]),
        ((0, 99), [(0, 99)], []),
        ((0, 99), [(10, 19), (50, 200)], [(0, 9), (20, 49)]),
        ((100, 199), [(0, 16383)], []),
        ((100, 199), [(0, 120), (150, 150)], [(121, 149), (151, 199)]),
    ],
)
def test_plan_unowned_ranges(
    wanted: tuple[int, int], owned: list[tuple[int, int]], free: list[tuple[int, int]]
) -> None:
    assert plan_unowned_ranges(wanted, owned) == free


def test_compress_slots() -> None:
    assert compress_slots([5, 1, 2, 3, 9, 10]) == [(1, 3), (5, 5), (9, 10)]
