"""Recording a database's history: what each reconcile tick saw of its nodes, turned into events
(amr.logic.operations.events decides which) and written to the store."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from amr.errors import AmrError
from amr.logic.operations.events import (
    NodeTick,
    event_id,
    plan_events_to_prune,
    plan_foreign_node_events,
    plan_node_events,
    plan_pids_to_keep,
    plan_primary_events,
    plan_repairs,
)
from amr.logic.operations.foreign_nodes import ForeignNode
from amr.logic.operations.node_actions import Action, EnsureNode
from amr.logic.operations.node_state import ObservedNode
from amr.model.enums import ProvisioningState, ResourceState
from amr.model.events import DatabaseEvent, EventKind, NodePids, events_prefix
from amr.model.node import NodeSpec, NodeStatus, ProcessState
from amr.model.resources import Database
from amr.nodes.backend import NodeBackend, ValkeyAdmin
from amr.store.repository import Store

log = logging.getLogger(__name__)

_NOT_RUNNING = frozenset({ProcessState.ABSENT, ProcessState.STOPPED, ProcessState.FAILED})


class StatusRecorder:
    """A NodeBackend that remembers the last ``node_status`` answer of each node, so a tick learns the
    pids it observed without asking the supervisor twice."""

    def __init__(self, backend: NodeBackend) -> None:
        self._backend = backend
        self.statuses: dict[str, NodeStatus] = {}
        self.engine_version = backend.engine_version

    async def node_status(self, name: str) -> NodeStatus:
        status = await self._backend.node_status(name)
        self.statuses[name] = status
        return status

    async def ensure_node(self, spec: NodeSpec) -> None:
        await self._backend.ensure_node(spec)

    async def snapshot_exists(self, spec: NodeSpec) -> bool:
        return await self._backend.snapshot_exists(spec)

    async def remove_snapshot(self, spec: NodeSpec) -> None:
        await self._backend.remove_snapshot(spec)

    async def read_config(self, spec: NodeSpec) -> str | None:
        return await self._backend.read_config(spec)

    async def list_nodes(self) -> list[NodeStatus]:
        return await self._backend.list_nodes()

    async def list_node_directories(self) -> dict[str, str]:
        return await self._backend.list_node_directories()

    async def wait_ready(self, spec: NodeSpec, timeout: float) -> None:
        await self._backend.wait_ready(spec, timeout)

    async def remove_node(self, name: str, directory: str) -> None:
        await self._backend.remove_node(name, directory)

    async def restart_node(self, name: str) -> None:
        await self._backend.restart_node(name)

    async def runs_current_binary(self, name: str, directory: str) -> bool | None:
        return await self._backend.runs_current_binary(name, directory)

    def admin(self, spec: NodeSpec, decode: bool = True) -> ValkeyAdmin:
        return self._backend.admin(spec, decode)


@dataclass
class ConvergeTrace:
    """What one converge of a database saw and did, observation by observation."""

    first: dict[str, NodeStatus] = field(default_factory=dict)
    last: dict[str, NodeStatus] = field(default_factory=dict)
    started: dict[str, ProcessState] = field(default_factory=dict)  # node -> state when we started it
    repairs: dict[str, list[str]] = field(default_factory=dict)
    converged: bool = False
    primaries: dict[int, str] = field(default_factory=dict)  # per shard, as last seen clearly
    foreign: dict[str, ForeignNode] = field(default_factory=dict)  # by id, as first seen

    def see(
        self,
        statuses: dict[str, NodeStatus],
        observed: Mapping[str, ObservedNode],
        actions: Sequence[Action],
        primaries: Mapping[int, str] | None = None,
        foreign: tuple[ForeignNode, ...] = (),
    ) -> None:
        self.primaries.update(primaries or {})
        for node in foreign:
            self.foreign.setdefault(node.node_id, node)
        if not self.first:
            self.first = dict(statuses)
        self.last = dict(statuses)
        self.converged = not actions
        for action in actions:
            status = statuses.get(action.spec.name)
            if isinstance(action, EnsureNode) and status is not None and status.state in _NOT_RUNNING:
                self.started.setdefault(action.spec.name, status.state)
        for name, texts in plan_repairs(actions, observed).items():
            known = self.repairs.setdefault(name, [])
            known += [t for t in texts if t not in known]

    def node_ticks(self, db: Database, count_starts: bool, count_repairs: bool) -> list[NodeTick]:
        ticks = []
        for node in db.nodes:
            first = self.first.get(node.name)
            if first is None:
                continue
            last = self.last.get(node.name) if self.converged else None
            ticks.append(
                NodeTick(
                    name=node.name,
                    shard=node.shard,
                    state=self.started.get(node.name, first.state),
                    pid=first.pid,
                    final_pid=last.pid if last is not None else None,
                    started=node.name in self.started and count_starts,
                    # A correction that did not hold (the converge failed) would be told every tick.
                    repairs=tuple(self.repairs.get(node.name, ()))
                    if count_repairs and self.converged
                    else (),
                )
            )
        return ticks


class EventRecorder:
    """Remembers the pids this control plane saw and writes the events a tick decides to the store."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self._pids: dict[str, dict[str, int]] = {}
        self._primaries: dict[str, dict[int, str]] = {}
        # Nodes whose remembered pid was read from the store and not yet seen by this control plane.
        self._adopted: dict[str, set[str]] = {}
        self._settled: dict[str, Database] = {}

    def record(self, db: Database, trace: ConvergeTrace, steady: bool) -> list[DatabaseEvent]:
        """Record what a settle tick of ``db`` saw. ``steady``: the database and its cache had no
        operation running, so a node started or a setting corrected is a recovery or a repair rather
        than the work of an operation."""
        # A desired state that changed since our last tick (a key regenerated meanwhile) explains a
        # correction: only an unchanged one makes it drift.
        desired = _desired(db)
        unchanged = self._settled.get(db.key) in (None, desired)
        self._settled[db.key] = desired
        ticks = trace.node_ticks(db, count_starts=steady, count_repairs=steady and unchanged)
        if not ticks:
            return []  # nothing observed (the supervisor not answering): nothing learnt
        previous = self._pids.get(db.key)
        previous_primaries = self._primaries.get(db.key)
        if previous is None:
            stored = self._store.get(NodePids, db.key)
            previous = dict(stored.pids) if stored is not None else None
            if stored is not None and stored.primaries:
                previous_primaries = {int(k): v for k, v in stored.primaries.items()}
            self._adopted[db.key] = set(previous or ())
        adopted = self._adopted.setdefault(db.key, set())
        now = self._now()
        events = plan_node_events(db.key, db.id, previous, frozenset(adopted), ticks, now)
        events += plan_primary_events(
            db.key, db.id, previous_primaries, trace.primaries, previous, ticks, now
        )
        events += plan_foreign_node_events(db.key, db.id, tuple(trace.foreign.values()), trace.converged, now)
        kept = plan_pids_to_keep(previous or {}, ticks, [n.name for n in db.nodes])
        names = {n.name for n in db.nodes}
        primaries = {
            shard: name
            for shard, name in {**(previous_primaries or {}), **trace.primaries}.items()
            if name in names
        }
        try:
            for event in events:
                self._store.insert(event)
                if event.node is None:
                    log.warning("database %s: %s: %s", db.id, event.kind.value, event.cause)
                else:
                    log.info("database %s: %s of %s: %s", db.id, event.kind.value, event.node, event.cause)
            if events:
                self._prune(db.key)
            if kept != (previous or {}) or primaries != (previous_primaries or {}):
                self._save_pids(db.key, kept, primaries)
        except AmrError as e:
            log.warning("could not record the history of %s: %s", db.id, e)
            return []
        self._pids[db.key] = kept
        self._primaries[db.key] = primaries
        adopted -= {t.name for t in ticks if t.latest_pid is not None}
        return events

    def forget(self, db: Database) -> None:
        """Remove a deleted database's history."""
        self._pids.pop(db.key, None)
        self._primaries.pop(db.key, None)
        self._adopted.pop(db.key, None)
        self._settled.pop(db.key, None)
        for event in self._store.list(DatabaseEvent, events_prefix(db.key)):
            self._store.delete(event)
        stored = self._store.get(NodePids, db.key)
        if stored is not None:
            self._store.delete(stored)

    def _prune(self, database_key: str) -> None:
        for event in plan_events_to_prune(self._store.list(DatabaseEvent, events_prefix(database_key))):
            self._store.delete(event)

    def last_primaries(self, db: Database) -> dict[int, str]:
        """The primary of each shard as last seen clearly (by this control plane or a previous one)."""
        known = self._primaries.get(db.key)
        if known is None:
            stored = self._store.get(NodePids, db.key)
            known = {int(k): v for k, v in stored.primaries.items()} if stored is not None else {}
        return dict(known)

    def record_switchover(self, db: Database, shard: int, old: str, new: str, cause: str) -> None:
        """Record a planned switchover amr made itself (a rolling restart), and take ``new`` as the
        shard's primary, so the next tick does not tell the same change again."""
        now = self._now()
        event = DatabaseEvent(
            id=event_id(now, EventKind.SWITCHOVER, new),
            database_key=db.key,
            database_id=db.id,
            time=now.astimezone(UTC).isoformat(),
            kind=EventKind.SWITCHOVER,
            cause=cause,
            node=new,
            shard=shard,
            old_primary=old,
            new_primary=new,
        )
        primaries = {**self.last_primaries(db), shard: new}
        try:
            self._store.insert(event)
            self._prune(db.key)
            stored = self._store.get(NodePids, db.key)
            self._save_pids(db.key, dict(stored.pids) if stored is not None else {}, primaries)
        except AmrError as e:
            log.warning("could not record the history of %s: %s", db.id, e)
            return
        self._primaries[db.key] = primaries
        log.info("database %s: switchover of shard %s from %s to %s", db.id, shard, old, new)

    def record_restart(self, db: Database, event: DatabaseEvent) -> None:
        """Record a node restart amr made itself (a restart or upgrade of the database, see
        amr.reconciler.rolling), and take the node's new pid as known, so the next tick does not tell
        the same restart again as a crash."""
        known = self._pids.get(db.key)
        if known is None:
            stored = self._store.get(NodePids, db.key)
            pids = dict(stored.pids) if stored is not None else {}
        else:
            pids = dict(known)
        if event.node and event.new_pid is not None:
            pids[event.node] = event.new_pid
        try:
            self._store.insert(event)
            self._prune(db.key)
            self._save_pids(db.key, pids, self.last_primaries(db))
        except AmrError as e:
            log.warning("could not record the history of %s: %s", db.id, e)
            return
        if known is not None:
            self._pids[db.key] = pids
        log.info("database %s: %s of %s: %s", db.id, event.kind.value, event.node, event.cause)

    def _save_pids(self, database_key: str, pids: dict[str, int], primaries: dict[int, str]) -> None:
        new = NodePids(database_key, pids, {str(k): v for k, v in primaries.items()})
        stored = self._store.get(NodePids, database_key)
        if stored is None:
            self._store.insert(new)
        else:
            self._store.replace(stored, new)


def _desired(db: Database) -> Database:
    """``db`` without its state fields: what the user asked for."""
    return dataclasses.replace(
        db,
        provisioning_state=ProvisioningState.SUCCEEDED,
        resource_state=ResourceState.RUNNING,
        status_message="",
    )
