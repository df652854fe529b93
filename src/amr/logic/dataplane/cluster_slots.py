"""The router's slot map: which node serves each hash slot, read from a node's CLUSTER SLOTS reply
and translated from announced ports to the unix sockets the routes name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amr.logic.keyspace.keyslot import SLOTS
from amr.model.routes import ClusterNode


@dataclass
class SlotMap:
    """``owner[slot]`` indexes ``primaries`` (-1: no node serves the slot). ``primaries`` are the
    sockets of the nodes serving slots, in shard order, so a shard's index is stable for SCAN.
    ``owner`` is updated in place when a MOVED reply says more recent news than the last read."""

    owner: list[int]
    primaries: tuple[str, ...]

    def moved(self, slot: int, socket: str) -> None:
        """A node answered MOVED: ``slot`` is ``socket``'s now (if that node serves slots)."""
        if socket in self.primaries and 0 <= slot < SLOTS:
            self.owner[slot] = self.primaries.index(socket)

    def socket_for(self, slot: int) -> str | None:
        """The socket of the node serving ``slot``; None if no node does."""
        index = self.owner[slot]
        return self.primaries[index] if index >= 0 else None


def empty_slot_map() -> SlotMap:
    """A map in which no slot is served."""
    return SlotMap(owner=[-1] * SLOTS, primaries=())


def parse_cluster_slots(reply: Any, nodes: tuple[ClusterNode, ...]) -> SlotMap:
    """The slot map a decoded CLUSTER SLOTS reply describes; ranges whose primary announces a port no
    route node has are left unserved (the route is older than the cluster: the next refresh fixes
    it). Raise ValueError if the reply is not a CLUSTER SLOTS reply."""
    if not isinstance(reply, list):
        raise ValueError("CLUSTER SLOTS did not answer an array")
    by_port = {n.port: n for n in nodes}
    ranges: list[tuple[int, int, ClusterNode]] = []
    for entry in reply:
        if not isinstance(entry, list) or len(entry) < 3 or not isinstance(entry[2], list):
            raise ValueError("malformed CLUSTER SLOTS entry")
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        node = by_port.get(int(primary[1]))
        if node is not None and 0 <= start <= end < SLOTS:
            ranges.append((start, end, node))
    chosen = sorted({n for _, _, n in ranges}, key=lambda n: (n.shard, n.socket))
    index = {n.socket: i for i, n in enumerate(chosen)}
    owner = [-1] * SLOTS
    for start, end, node in ranges:
        owner[start : end + 1] = [index[node.socket]] * (end - start + 1)
    return SlotMap(owner=owner, primaries=tuple(n.socket for n in chosen))


def parse_redirect(frame: bytes) -> tuple[bytes, int, int] | None:
    """A MOVED or ASK error's (kind, slot, announced port); None for any other reply."""
    if not (frame.startswith(b"-MOVED ") or frame.startswith(b"-ASK ")):
        return None
    parts = frame[1:].split()
    if len(parts) != 3:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2].rsplit(b":", 1)[1])
    except (ValueError, IndexError):
        return None
