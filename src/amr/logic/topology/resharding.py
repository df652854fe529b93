"""Resharding: which hash slots move between shards, decided from what the nodes report.

A scaling run changes a clustered database's shard count. The reconciler observes every shard's
primary (its ``CLUSTER NODES`` line for itself: the slots it owns, the slots it is migrating or
importing, its config epoch), calls these functions and carries out what they return. Nothing here
remembers progress: a control plane that restarts mid-migration observes again and gets the moves
that remain, because every finished move shows in the slot owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from amr.logic.keyspace.slots import plan_slot_ranges


@dataclass(frozen=True)
class ClusterNodeLine:
    """One line of ``CLUSTER NODES``: a node as the answering node sees it."""

    node_id: str
    address: str
    flags: frozenset[str]
    primary_id: str | None
    config_epoch: int
    slots: frozenset[int]
    # slot -> node id: this node is moving the slot to / taking it from that node. Only a node's own
    # line ("myself") carries these.
    migrating: Mapping[int, str] = field(default_factory=dict)
    importing: Mapping[int, str] = field(default_factory=dict)

    @property
    def myself(self) -> bool:
        return "myself" in self.flags


@dataclass(frozen=True)
class SlotMove:
    """Move one slot's keys and ownership from the primary of shard ``source`` to that of ``target``."""

    slot: int
    source: int
    target: int


def parse_cluster_nodes(text: str, keep_noaddr: bool = False) -> list[ClusterNodeLine]:
    """The nodes of a ``CLUSTER NODES`` reply (nodes in handshake left out, and nodes without an
    address unless ``keep_noaddr``: a node whose address another id took still holds its slots)."""
    lines = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) < 8:
            continue
        flags = frozenset(parts[2].split(","))
        if "handshake" in flags or ("noaddr" in flags and not keep_noaddr):
            continue
        slots: set[int] = set()
        migrating: dict[int, str] = {}
        importing: dict[int, str] = {}
        for item in parts[8:]:
            if item.startswith("["):
                # [slot->-id] (migrating) or [slot-<-id] (importing)
                body = item.strip("[]")
                if "->-" in body:
                    slot, other = body.split("->-", 1)
                    migrating[int(slot)] = other
                elif "-<-" in body:
                    slot, other = body.split("-<-", 1)
                    importing[int(slot)] = other
                continue
            low, _, high = item.partition("-")
            slots.update(range(int(low), int(high or low) + 1))
        lines.append(
            ClusterNodeLine(
                node_id=parts[0],
                address=parts[1],
                flags=flags,
                primary_id=None if parts[3] == "-" else parts[3],
                config_epoch=int(parts[6]) if parts[6].isdigit() else 0,
                slots=frozenset(slots),
                migrating=migrating,
                importing=importing,
            )
        )
    return lines


def parse_myself(text: str) -> ClusterNodeLine | None:
    """The answering node's own line of a ``CLUSTER NODES`` reply."""
    return next((line for line in parse_cluster_nodes(text) if line.myself), None)


def choose_slot_owners(views: Mapping[int, ClusterNodeLine]) -> dict[int, int]:
    """Which shard owns each slot, from each shard primary's view of itself (``views``: shard -> its
    primary's own line). When two primaries both claim a slot (a move whose last step has reached the
    target but not yet the source), the higher config epoch wins, as it will in the cluster."""
    owners: dict[int, int] = {}
    epochs: dict[int, int] = {}
    for shard, view in sorted(views.items()):
        for slot in view.slots:
            if slot not in owners or view.config_epoch > epochs[slot]:
                owners[slot] = shard
                epochs[slot] = view.config_epoch
    return owners


def plan_target_ranges(owners: Mapping[int, int], shards: Iterable[int]) -> dict[int, tuple[int, int]]:
    """The slot range each of ``shards`` should end up with: the even contiguous ranges of
    ``plan_slot_ranges``, each given to the shard that already owns most of it (ties: lowest shard),
    so the least data moves: 1 -> 2 shards moves half the slots, 2 -> 4 half, 4 -> 2 half.

    The choice is stable while the moves it implies are carried out (each move only raises the chosen
    shard's share of its range and lowers the others'), so replanning mid-way gives the same ranges."""
    chosen = sorted(set(shards))
    ranges = plan_slot_ranges(len(chosen))
    overlap: dict[tuple[int, int], int] = {}
    for slot, shard in owners.items():
        if shard not in chosen:
            continue
        for index, (first, last) in enumerate(ranges):
            if first <= slot <= last:
                overlap[(index, shard)] = overlap.get((index, shard), 0) + 1
                break
    pairs = sorted(
        ((index, shard) for index in range(len(ranges)) for shard in chosen),
        key=lambda p: (-overlap.get(p, 0), p[0], p[1]),
    )
    result: dict[int, tuple[int, int]] = {}
    used_ranges: set[int] = set()
    for index, shard in pairs:
        if index in used_ranges or shard in result:
            continue
        result[shard] = ranges[index]
        used_ranges.add(index)
    return result


def plan_slot_moves(owners: Mapping[int, int], shards: Iterable[int]) -> list[SlotMove]:
    """The slot moves that bring ``owners`` (slot -> shard) to an even spread over ``shards``
    (``plan_target_ranges``): every slot owned by a shard outside its target range, including every
    slot of a shard that is leaving (not in ``shards``), moves to the shard whose range holds it.
    Unowned slots are not moves (ADDSLOTS gives them out). Sorted by source, target, slot."""
    targets = plan_target_ranges(owners, shards)
    holder = {}
    for shard, (first, last) in targets.items():
        for slot in range(first, last + 1):
            holder[slot] = shard
    moves = [
        SlotMove(slot, source, holder[slot])
        for slot, source in owners.items()
        if slot in holder and holder[slot] != source
    ]
    return sorted(moves, key=lambda m: (m.source, m.target, m.slot))


def plan_stale_slot_states(
    views: Mapping[int, ClusterNodeLine], moves: Iterable[SlotMove]
) -> list[tuple[int, int]]:
    """(shard, slot) pairs whose primary holds a MIGRATING or IMPORTING state that no remaining move
    explains (a move that finished but crashed before its last step, or one replanned elsewhere):
    ``CLUSTER SETSLOT <slot> STABLE`` clears them, so clients stop being sent ASK for them."""
    explained = {(m.source, m.slot) for m in moves} | {(m.target, m.slot) for m in moves}
    stale = []
    for shard, view in sorted(views.items()):
        for slot in sorted({*view.migrating, *view.importing}):
            if (shard, slot) not in explained:
                stale.append((shard, slot))
    return stale


def plan_forget(known: Mapping[str, Iterable[str]], keep: Iterable[str]) -> list[tuple[str, str]]:
    """(node, id) pairs: the node ids each node (``known``: node name -> ids in its CLUSTER NODES)
    still knows that are not among ``keep`` (the ids of the database's nodes): nodes removed by a
    scale-in, which every remaining node must ``CLUSTER FORGET``."""
    keep_ids = set(keep)
    return [(name, i) for name, ids in sorted(known.items()) for i in sorted(set(ids) - keep_ids)]


def plan_move_batches(moves: Iterable[SlotMove], size: int) -> list[list[SlotMove]]:
    """Moves grouped by (source, target) pair in batches of at most ``size`` slots: one batch is one
    pipelined round of SETSLOT IMPORTING / MIGRATING / key moves / SETSLOT NODE."""
    groups: dict[tuple[int, int], list[SlotMove]] = {}
    for move in moves:
        groups.setdefault((move.source, move.target), []).append(move)
    batches = []
    for _, group in sorted(groups.items()):
        for start in range(0, len(group), max(1, size)):
            batches.append(group[start : start + size])
    return batches
