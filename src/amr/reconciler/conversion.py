"""Carrying out a NoCluster -> clustered conversion on a database's nodes (see amr.logic.operations.conversion).

Each round observes the nodes (cluster mode from INFO cluster, or from valkey.conf for a node that is
not running), plans and acts, until nothing is left in non-cluster mode; then the reconciler's usual
convergence gives out the remaining slots and makes the replicas replicate. Failover of the database
is paused (it leaves the HA watch) before any node restarts, so a restart never looks like a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from amr.errors import NodeError
from amr.logic.operations.conversion import (
    ConversionAction,
    ConversionNode,
    ConvertPrimary,
    RecreateEmpty,
    StartClustered,
    choose_conversion_blocker,
    parse_cluster_enabled,
    parse_conf_cluster_enabled,
    plan_conversion,
)
from amr.logic.operations.node_state import NodeTarget
from amr.model.node import NodeSpec, ProcessState, Role
from amr.model.resources import Database
from amr.nodes.backend import NodeBackend

log = logging.getLogger(__name__)

_POLL = 0.1

PauseFailover = Callable[[Database], Awaitable[None]]


class Converter:
    """Brings a database's nodes from non-cluster to cluster mode, keeping the data (see ``convert``)."""

    def __init__(
        self, backend: NodeBackend, start_timeout: float, pause_failover: PauseFailover | None = None
    ) -> None:
        self._backend = backend
        self._start_timeout = start_timeout
        self._pause_failover = pause_failover

    async def convert(self, db: Database, targets: tuple[NodeTarget, ...]) -> str:
        """Run conversion rounds until no node of ``db`` is left in non-cluster mode; "" if none was
        to begin with, else what was done. ``targets`` carry the cluster-mode specs. Raises NodeError
        when a step fails or no clear data holder appears before the deadline."""
        if not db.clustering_policy.cluster_mode:
            return ""
        specs = {t.spec.name: t.spec for t in targets}
        primaries = {t.spec.shard: t.spec.name for t in targets if t.spec.role is Role.PRIMARY}
        deadline = time.monotonic() + self._start_timeout * 4
        done: list[str] = []
        paused = False
        while True:
            nodes = [await self._observe(spec) for spec in specs.values()]
            if not any(n.clustered is False for n in nodes):
                if done or paused:
                    await self._restore_launch_files(specs, nodes)
                return "; ".join(done)
            actions = plan_conversion(nodes, primaries, db.persistence.aof_enabled)
            if not actions:
                if time.monotonic() > deadline:
                    why = choose_conversion_blocker(nodes) or "nodes do not answer"
                    raise NodeError(f"cannot convert the nodes to cluster mode: {why}")
                await asyncio.sleep(_POLL)
                continue
            if not paused and self._pause_failover is not None:
                await self._pause_failover(db)  # before a node stops: no failover meanwhile
                paused = True
            for action in actions:
                await self._execute(specs[action.name], action)
                done.append(_describe(action))
                log.info("converting %s to %s: %s", db.id, db.clustering_policy.value, done[-1])

    async def _restore_launch_files(self, specs: dict[str, NodeSpec], nodes: list[ConversionNode]) -> None:
        # A primary converted without its peers gets them back (see _execute); never restarts it.
        for node in nodes:
            if node.running:
                await self._backend.ensure_node(specs[node.name])

    async def _observe(self, spec: NodeSpec) -> ConversionNode:
        status = await self._backend.node_status(spec.name)
        if status.state is ProcessState.RUNNING:
            admin = self._backend.admin(spec)
            try:
                info = await admin.execute("INFO", "cluster")
                role = await admin.execute("ROLE")
                return ConversionNode(
                    spec.name, spec.shard, True, parse_cluster_enabled(_info_text(info)), _first(role)
                )
            except NodeError as e:
                log.debug("node %s does not answer yet: %s", spec.name, e)
            finally:
                await admin.close()
        clustered = parse_conf_cluster_enabled(await self._backend.read_config(spec))
        # Starting, or running without answering: it may be the primary coming back.
        silent = status.state in (ProcessState.RUNNING, ProcessState.STARTING) and clustered is False
        return ConversionNode(spec.name, spec.shard, False, clustered, silent=silent)

    async def _execute(self, spec: NodeSpec, action: ConversionAction) -> None:
        if isinstance(action, ConvertPrimary):
            # No peers in its launch file for this start: the launcher would otherwise wait for its
            # replica (which still follows it) to be promoted, and nothing promotes it now.
            alone = dataclasses.replace(spec, peers=())
            if action.running:
                await self._pause_and_save(alone, action.save)
            await self._backend.ensure_node(alone)  # writes the cluster-mode valkey.conf
            if action.running:
                await self._backend.restart_node(spec.name)
            await self._backend.wait_ready(alone, self._start_timeout)
            # Its peers back, for its later starts (a crashed primary waits for its replica's
            # promotion); this never restarts a running node.
            await self._backend.ensure_node(spec)
            return
        if isinstance(action, RecreateEmpty):
            await self._backend.remove_node(spec.name, spec.directory)  # with its data files
            await self._backend.ensure_node(spec)
        elif isinstance(action, StartClustered):
            await self._backend.ensure_node(spec)
        await self._backend.wait_ready(spec, self._start_timeout)

    async def _pause_and_save(self, spec: NodeSpec, save: bool) -> None:
        """Hold every write until the node stops (its clients are then disconnected, their pending
        writes never acknowledged), and snapshot what was acknowledged, which it loads at its start."""
        admin = self._backend.admin(spec)
        try:
            if save:
                # Without persistence the engine may delete an RDB it made for a replica's sync; this
                # one must stay until the node has loaded it.
                await admin.execute("CONFIG", "SET", "rdb-del-sync-files", "no")
            await admin.execute("CLIENT", "PAUSE", str(int(self._start_timeout * 2000)), "WRITE")
            if save:
                await admin.execute("SAVE")
        finally:
            await admin.close()


def _describe(action: ConversionAction) -> str:
    if isinstance(action, ConvertPrimary):
        how = "paused writes, saved and restarted" if action.save else "restarted"
        if not action.running:
            how = "started"
        return f"{how} {action.name} in cluster mode with its data"
    if isinstance(action, RecreateEmpty):
        return f"recreated {action.name} empty in cluster mode"
    return f"started {action.name} in cluster mode"


def _info_text(reply: object) -> str:
    if isinstance(reply, dict):
        return "\n".join(f"{k}:{v}" for k, v in reply.items())
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _first(reply: object) -> str | None:
    if isinstance(reply, list) and reply:
        first = reply[0]
        return first.decode(errors="replace") if isinstance(first, bytes) else str(first)
    return None
