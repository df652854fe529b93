"""Hash slots: the even split of the 16384 slots over shards, and which slots nobody owns."""

from __future__ import annotations

from collections.abc import Iterable

ALL_SLOTS = 16384


def plan_slot_ranges(shards: int) -> list[tuple[int, int]]:
    """The hash slots of each shard: the 16384 slots in ``shards`` contiguous ranges as even as they
    can be (the first ranges one slot longer when they do not divide evenly)."""
    shards = max(1, shards)
    size, extra = divmod(ALL_SLOTS, shards)
    ranges, first = [], 0
    for shard in range(shards):
        last = first + size + (1 if shard < extra else 0) - 1
        ranges.append((first, last))
        first = last + 1
    return ranges


def plan_unowned_ranges(wanted: tuple[int, int], owned: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the slot range ``wanted`` that none of the ``owned`` ranges covers: what ADDSLOTS
    may give a shard. Slots someone owns move only by migration, never by ADDSLOTS."""
    first, last = wanted
    taken = sorted(r for r in owned if r[1] >= first and r[0] <= last)
    result: list[tuple[int, int]] = []
    cursor = first
    for low, high in taken:
        if low > cursor:
            result.append((cursor, min(low - 1, last)))
        cursor = max(cursor, high + 1)
        if cursor > last:
            break
    if cursor <= last:
        result.append((cursor, last))
    return result


def compress_slots(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Slots as sorted contiguous (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for slot in sorted(set(slots)):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges
