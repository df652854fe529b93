"""Foreign nodes: node ids in a clustered database's node tables that are none of the database's
own nodes, how amr removes them, and what the database's state says meanwhile.

A node that amr did not create gets into a database's cluster through the cluster bus (``CLUSTER
MEET`` from a node that can reach it). With a higher config epoch it takes slots from the database's
primaries, and the engine deletes the keys of a slot its node loses. amr's answer, decided here and
carried out by the reconciler every tick: every own node forgets every foreign id (the engine keeps
a forgotten id out of its table for 60 s, and the next tick forgets it again if it came back), the
primaries raise their config epochs above every epoch they have seen (so the foreigner's old epoch
no longer wins a slot), and once no own node knows a foreign id any more the usual topology planning
gives the slots nobody owns back to the shards of the planned layout (ADDSLOTS).

An id no own node claims is foreign whatever its address: a node of the database that was replaced
(its nodes.conf lost, so it came back with a new id) leaves its old id behind, which is forgotten
the same way. The scaler forgets the nodes a scale-in removed itself; the reconciler does not look
for foreign nodes while slots migrate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from amr.logic.keyspace.slots import ALL_SLOTS, compress_slots
from amr.logic.operations.node_state import NodeTarget, ObservedNode
from amr.model.enums import ProvisioningState, ResourceState
from amr.model.node import NodeSpec, Role
from amr.model.resources import Database

# The first words of the statusMessage of a database whose cluster is not healthy.
UNHEALTHY_PREFIX = "The database's cluster is not healthy"


@dataclass(frozen=True)
class ForeignNode:
    """A node id in the node table of one or more of a database's nodes that is not one of them."""

    node_id: str
    address: str
    config_epoch: int
    slots: tuple[tuple[int, int], ...]  # the slots own nodes see it serve, as ranges
    known_by: tuple[str, ...]  # the own nodes whose table holds it
    followed_by: tuple[str, ...] = ()  # own nodes that replicate it (they cannot forget it)


@dataclass(frozen=True)
class ClusterForget:
    """Remove a node that is not the database's from one node's table (``CLUSTER FORGET``)."""

    spec: NodeSpec
    node_id: str


@dataclass(frozen=True)
class BumpEpoch:
    """Give a primary a config epoch above every epoch it has seen (``CLUSTER BUMPEPOCH``), so the
    epoch a forgotten node had wins no slot from it any more."""

    spec: NodeSpec


def choose_foreign_nodes(
    targets: Sequence[NodeTarget], observed: Mapping[str, ObservedNode]
) -> tuple[ForeignNode, ...]:
    """The ids that the own nodes' tables hold and that no own node has, with what the own nodes
    see of each. Empty when an own node was not observed with its cluster id: an id amr cannot
    attribute is never called foreign."""
    own: set[str] = set()
    for t in targets:
        seen = observed.get(t.spec.name)
        if seen is None or seen.cluster_id is None:
            return ()
        own.add(seen.cluster_id)
    lines: dict[str, list[tuple[str, bool, int, str, frozenset[int]]]] = {}
    for t in targets:
        seen = observed[t.spec.name]
        for line in seen.cluster_nodes:
            if line.node_id in own:
                continue
            follows = seen.cluster_primary_id == line.node_id
            lines.setdefault(line.node_id, []).append(
                (t.spec.name, follows, line.config_epoch, line.address, line.slots)
            )
    found = []
    for node_id, views in sorted(lines.items()):
        newest = max(views, key=lambda v: v[2])
        found.append(
            ForeignNode(
                node_id=node_id,
                address=newest[3],
                config_epoch=newest[2],
                slots=tuple(compress_slots(newest[4])),
                known_by=tuple(sorted(name for name, _, _, _, _ in views)),
                followed_by=tuple(sorted(name for name, follows, _, _, _ in views if follows)),
            )
        )
    return tuple(found)


def plan_foreign_node_repair(
    targets: Sequence[NodeTarget],
    observed: Mapping[str, ObservedNode],
    foreign: Sequence[ForeignNode],
) -> list[ClusterForget | BumpEpoch]:
    """The repair while foreign nodes are known: every own node forgets each foreign id (all in one
    round: a node that still knew it would gossip it back to one that forgot it), then every own
    primary bumps its config epoch, which puts it above the foreigner's (a node's current epoch is
    at least every epoch it has seen).

    A node that replicates a foreign node cannot forget it (the engine refuses to forget a node's
    own primary): it is left out, and the database stays reported unhealthy until an operator acts.
    Slots are not given out here: ADDSLOTS of a slot a node still sees a foreigner serve fails, so
    the usual topology planning does it once no own node knows a foreign id."""
    if not foreign:
        return []
    specs = {t.spec.name: t.spec for t in targets}
    actions: list[ClusterForget | BumpEpoch] = []
    for node in foreign:
        for name in node.known_by:
            if name not in node.followed_by and name in specs:
                actions.append(ClusterForget(specs[name], node.node_id))
    if not actions:
        return []  # nothing this repair can do: the topology planning waits, the state tells why
    for t in targets:
        seen = observed.get(t.spec.name)
        if t.spec.role is Role.PRIMARY and seen is not None and seen.cluster_primary_id is None:
            actions.append(BumpEpoch(t.spec))
    return actions


def validate_cluster_health(
    targets: Sequence[NodeTarget],
    observed: Mapping[str, ObservedNode],
    foreign: Sequence[ForeignNode],
) -> tuple[str, ...]:
    """What is wrong with a clustered database's cluster, in words for its statusMessage (empty:
    healthy): foreign nodes, hash slots no own node serves, nodes that report the cluster down.
    Only foreign nodes are told while a node is not ready (its restart is told by events)."""
    problems = [_describe_foreign(node) for node in foreign]
    if any(seen is None or not seen.ready for seen in (observed.get(t.spec.name) for t in targets)):
        return tuple(problems)
    served = {
        slot
        for t in targets
        for first, last in observed[t.spec.name].cluster_slot_ranges
        for slot in range(first, last + 1)
    }
    missing = compress_slots(set(range(ALL_SLOTS)) - served)
    if missing:
        problems.append(f"hash slots {_render_ranges(missing)} are served by no node of the database")
    down = [t.spec.name for t in targets if not observed[t.spec.name].cluster_state_ok]
    if down:
        problems.append(f"{', '.join(down)} report{'s' if len(down) == 1 else ''} the cluster down")
    return tuple(problems)


def plan_health_status(db: Database, problems: Sequence[str], note: str) -> Database:
    """The database record with its state telling the cluster's health: ``Updating`` and a
    statusMessage naming the problems while there are some, ``Running`` and the usual note
    (``note``: the shard note) once they are gone. Only a database with no operation running
    (provisioning Succeeded) is changed; an operation owns the state of the others."""
    if db.provisioning_state is not ProvisioningState.SUCCEEDED:
        return db
    if problems:
        message = f"{UNHEALTHY_PREFIX}: {'; '.join(problems)}. amr is repairing it."
        return replace(
            db,
            resource_state=ResourceState.UPDATING,
            status_message=f"{message} {note}" if note else message,
        )
    if db.resource_state is ResourceState.UPDATING or db.status_message.startswith(UNHEALTHY_PREFIX):
        return replace(db, resource_state=ResourceState.RUNNING, status_message=note)
    return db


def render_foreign_repair_cause(node: ForeignNode, repaired: bool) -> str:
    """The cause of the ``repair`` event for a foreign node (``repaired``: the converge that found
    it ended with the cluster as planned)."""
    slots = " and took back the slots it held" if node.slots else ""
    outcome = (
        f"every node of the database forgot it, its primaries raised their config epochs above it{slots}"
        if repaired
        else "amr is removing it (every node forgets it, the primaries raise their config epochs "
        "and take back the slots nobody serves); it was still there at the end of this pass"
    )
    return f"{_describe_foreign(node)}: {outcome}"


def _describe_foreign(node: ForeignNode) -> str:
    slots = f", serving slots {_render_ranges(node.slots)}" if node.slots else ""
    text = (
        f"a node amr did not create (id {node.node_id} at {node.address}, config epoch "
        f"{node.config_epoch}{slots}) is in its cluster"
    )
    if node.followed_by:
        text += f"; {', '.join(node.followed_by)} replicate{'s' if len(node.followed_by) == 1 else ''} it"
    return text


def _render_ranges(ranges: Sequence[tuple[int, int]]) -> str:
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges[:8]]
    if len(ranges) > 8:
        parts.append(f"and {len(ranges) - 8} more ranges")
    return ", ".join(parts)
