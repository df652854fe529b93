"""Deciding which events a reconcile tick of one database records in its history, and which old
events to forget."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from amr.logic.foreign_nodes import ForeignNode, render_foreign_repair_cause
from amr.logic.node_actions import Action, AddSlots, ClusterMeet, ClusterReplicate, ConfigSet, SetDefaultUser
from amr.logic.plan import ObservedNode
from amr.model.events import DatabaseEvent, EventKind
from amr.model.node import ProcessState

# Events a database keeps; older ones are pruned.
MAX_EVENTS_PER_DATABASE = 1000

RESTART_CAUSE = "the node's process exited; the supervisor restarted it"
RECOVERY_CAUSE = "the node was not running (after amr stop/serve, a reboot or a crash); amr started it"
ADOPTED_RECOVERY_CAUSE = (
    "the node's process was started again while amr's control plane was not running "
    "(amr stop/serve, a reboot, or a crash while the API was down)"
)

_NOT_RUNNING = frozenset({ProcessState.ABSENT, ProcessState.STOPPED, ProcessState.FAILED})


@dataclass(frozen=True)
class NodeTick:
    """What one reconcile tick saw and did for one node.

    ``state`` and ``pid`` come from the tick's first observation; ``final_pid`` from its last (None
    when the tick did not get that far). ``started`` says the tick asked the backend to start the node;
    ``repairs`` describes live corrections the tick made to it (drift, not a change the user asked for).
    """

    name: str
    shard: int
    state: ProcessState
    pid: int | None
    final_pid: int | None = None
    started: bool = False
    repairs: tuple[str, ...] = ()

    @property
    def latest_pid(self) -> int | None:
        return self.final_pid if self.final_pid is not None else self.pid


def plan_node_events(
    database_key: str,
    database_id: str,
    previous_pids: Mapping[str, int] | None,
    adopted: Collection[str],
    nodes: Sequence[NodeTick],
    now: datetime,
) -> list[DatabaseEvent]:
    """Decide the events of one tick of a database.

    - ``recovery``: the tick had to start a node that was not running (absent, stopped, failed) and
      it came up within the tick (one that comes up later shows as a changed pid). A
      node the supervisor is already bringing back (starting) is not one: its new pid shows up as a
      ``restart`` instead.
    - ``restart``: the node's pid differs from the one this reconciler saw last.
    - ``recovery`` too for a node in ``adopted`` (its previous pid was read from the store by a
      control plane that has not seen the node running yet): the pid changed while no control plane
      was watching, so all we know is that the node was started again, not that it crashed.
    - ``repair``: live settings of a node were corrected (skipped for a node recovered in the same
      tick, whose fresh start explains them).

    ``previous_pids`` None means nothing is known (a new database, or a store from before events):
    no restart can be told then, and adopting running nodes is never an event.
    """
    events: list[DatabaseEvent] = []
    previous = previous_pids or {}
    for node in nodes:
        old_pid = previous.get(node.name)
        if node.started and node.state in _NOT_RUNNING:
            if node.final_pid is None:
                continue  # not up yet: told once it is, by a later tick
            events.append(
                _event(
                    database_key,
                    database_id,
                    now,
                    EventKind.RECOVERY,
                    f"{RECOVERY_CAUSE} (it was {node.state.value})",
                    node,
                    old_pid,
                    node.final_pid,
                )
            )
            continue
        pid = node.latest_pid
        if old_pid is not None and pid is not None and pid != old_pid:
            kind, cause = (
                (EventKind.RECOVERY, ADOPTED_RECOVERY_CAUSE)
                if node.name in adopted
                else (EventKind.RESTART, RESTART_CAUSE)
            )
            events.append(_event(database_key, database_id, now, kind, cause, node, old_pid, pid))
        if node.repairs:
            cause = "live settings had drifted and were put back: " + "; ".join(node.repairs)
            events.append(_event(database_key, database_id, now, EventKind.REPAIR, cause, node, None, None))
    return events


FAILOVER_CAUSE = "the primary {old} went down ({how}); its replica {new} was promoted"
SWITCHOVER_CAUSE = "{new} took over from {old}, which kept running (a planned switchover)"


def plan_primary_events(
    database_key: str,
    database_id: str,
    previous_primaries: Mapping[int, str] | None,
    primaries: Mapping[int, str],
    previous_pids: Mapping[str, int] | None,
    nodes: Sequence[NodeTick],
    now: datetime,
) -> list[DatabaseEvent]:
    """Decide the failover and switchover events of one tick: a shard whose clearly observed primary
    (``primaries``) is not the one last seen (``previous_primaries``).

    It is a ``failover`` when the old primary was not running at the tick's first look, was started
    by the tick, or runs with another pid than before (it died and came back as a replica); otherwise
    a ``switchover``. Nothing is known before a first clear look (``previous_primaries`` None)."""
    if previous_primaries is None:
        return []
    ticks = {n.name: n for n in nodes}
    pids = previous_pids or {}
    events = []
    for shard, new in sorted(primaries.items()):
        old = previous_primaries.get(shard)
        if old is None or old == new:
            continue
        tick = ticks.get(old)
        how = ""
        if tick is not None and (tick.started or tick.state in _NOT_RUNNING):
            how = f"its process was {tick.state.value}"
        elif tick is not None and pids.get(old) is not None and tick.latest_pid not in (None, pids[old]):
            how = "its process exited and was started again"
        if how:
            kind, cause = EventKind.FAILOVER, FAILOVER_CAUSE.format(old=old, new=new, how=how)
        else:
            kind, cause = EventKind.SWITCHOVER, SWITCHOVER_CAUSE.format(old=old, new=new)
        events.append(
            DatabaseEvent(
                id=event_id(now, kind, new),
                database_key=database_key,
                database_id=database_id,
                time=now.astimezone(UTC).isoformat(),
                kind=kind,
                cause=cause,
                node=new,
                shard=shard,
                old_primary=old,
                new_primary=new,
            )
        )
    return events


def plan_foreign_node_events(
    database_key: str,
    database_id: str,
    foreign: Sequence[ForeignNode],
    repaired: bool,
    now: datetime,
) -> list[DatabaseEvent]:
    """Decide the ``repair`` events of a tick that found nodes amr did not create in the database's
    cluster (``foreign``, see ``amr.logic.foreign_nodes``): one per foreign node, naming it in its
    cause (it is no node of the database, so the event names no node). ``repaired``: the tick ended
    with the cluster as planned."""
    return [
        DatabaseEvent(
            id=event_id(now, EventKind.REPAIR, f"foreign-{node.node_id}"),
            database_key=database_key,
            database_id=database_id,
            time=now.astimezone(UTC).isoformat(),
            kind=EventKind.REPAIR,
            cause=render_foreign_repair_cause(node, repaired),
        )
        for node in foreign
    ]


def plan_pids_to_keep(
    previous: Mapping[str, int], nodes: Sequence[NodeTick], names: Collection[str]
) -> dict[str, int]:
    """The pids to remember after a tick for the database's nodes ``names``: each node's latest
    known pid; a node seen without one (down, not observed, the supervisor not answering) keeps its
    old pid, so its comeback is still told apart."""
    kept = {name: pid for name, pid in previous.items() if name in names}
    for node in nodes:
        if node.latest_pid is not None:
            kept[node.name] = node.latest_pid
    return kept


def plan_events_to_prune(
    events: Sequence[DatabaseEvent], keep: int = MAX_EVENTS_PER_DATABASE
) -> list[DatabaseEvent]:
    """The oldest events beyond ``keep`` (``events`` in time order, oldest first)."""
    return list(events[: max(0, len(events) - keep)])


def event_id(now: datetime, kind: EventKind, node: str | None) -> str:
    """An event's id: its UTC time first (so ids sort in time order), then kind and node, which
    keeps two events of one tick apart."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{kind.value}" + (f"-{node}" if node else "")


def _event(
    database_key: str,
    database_id: str,
    now: datetime,
    kind: EventKind,
    cause: str,
    node: NodeTick,
    old_pid: int | None,
    new_pid: int | None,
) -> DatabaseEvent:
    return DatabaseEvent(
        id=event_id(now, kind, node.name),
        database_key=database_key,
        database_id=database_id,
        time=now.astimezone(UTC).isoformat(),
        kind=kind,
        cause=cause,
        node=node.name,
        shard=node.shard,
        old_pid=old_pid,
        new_pid=new_pid,
    )


def plan_repairs(
    actions: Sequence[Action], observed: Mapping[str, ObservedNode]
) -> dict[str, tuple[str, ...]]:
    """What each node's corrective actions put back, in words for the history (never a secret)."""
    out: dict[str, list[str]] = {}
    for action in actions:
        name = action.spec.name
        seen = observed.get(name)
        if isinstance(action, ConfigSet):
            was = seen.config.get(action.parameter, "") if seen else ""
            text = f"{action.parameter} was '{was}', set back to '{action.value}'"
        elif isinstance(action, SetDefaultUser):
            text = "the default user's access keys did not match the database's; set them again"
        elif isinstance(action, AddSlots):
            text = f"the primary held no hash slots; assigned slots {action.first}-{action.last}"
        elif isinstance(action, ClusterMeet):
            text = f"the node did not know {action.host}:{action.port} of its cluster; introduced them"
        elif isinstance(action, ClusterReplicate):
            text = "the replica did not follow its primary; made it replicate the primary again"
        else:
            continue
        if text not in out.setdefault(name, []):
            out[name].append(text)
    return {name: tuple(texts) for name, texts in out.items()}
