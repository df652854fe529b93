"""Keeping the host's Sentinel monitoring every non-clustered HA database at its current primary.

Each reconcile tick reads what Sentinel monitors (``SENTINEL MASTERS``), then asks the nodes of every
such database for their ROLE, plans with amr.logic.sentinel_plan and sends the SENTINEL commands. The
order matters: Sentinel is read first, so a failover it finishes meanwhile is seen as busy or done,
never undone from stale roles. Failing over is Sentinel's alone; this only adds, moves and removes
monitors, so failovers go on while the control plane is down.
"""

from __future__ import annotations

import asyncio
import logging

from amr.errors import NodeError
from amr.logic.routes import node_socket_path
from amr.logic.sentinel_plan import (
    AddMonitor,
    RemoveMonitor,
    SentinelAction,
    Watch,
    choose_sentinel_watch,
    describe_sentinel_actions,
    monitor_name,
    parse_sentinel_masters,
    plan_desired_monitors,
    plan_sentinel_actions,
)
from amr.model.enums import ClusteringPolicy, Toggle
from amr.model.node import NodeSpec
from amr.model.resources import Cluster, Database, NodeAssignment
from amr.nodes.backend import NodeBackend
from amr.nodes.sentinel import SentinelAdmin, shorten_sentinel_periods
from amr.settings import Settings
from amr.store.repository import Store

log = logging.getLogger(__name__)


class SentinelKeeper:
    """Adds, moves and removes the Sentinel monitors of this host's databases (see ``keep``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: NodeBackend,
        sentinel: SentinelAdmin,
        admin_user: str,
        admin_password: str,
    ) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._sentinel = sentinel
        self._admin_user = admin_user
        self._admin_password = admin_password
        self._lock = asyncio.Lock()
        self._unreachable = ""  # the last reason Sentinel could not be reached, logged once

    async def keep(self) -> list[str]:
        """One pass: observe Sentinel, then the nodes; plan; act. Returns one line per change. A
        Sentinel that cannot be reached is logged (once) and retried at the next tick."""
        async with self._lock:
            try:
                observed = parse_sentinel_masters(await self._sentinel.masters())
            except NodeError as e:
                if str(e) != self._unreachable:
                    log.warning("cannot reach Sentinel; monitors are not kept until it answers: %s", e)
                    self._unreachable = str(e)
                return []
            if self._unreachable:
                log.info("Sentinel answers again")
                self._unreachable = ""
            done = await self._keep_timings()
            databases = self._store.list(Database)
            clusters = {c.key: c for c in self._store.list(Cluster)}
            roles: dict[str, str | None] = {}
            for db in databases:
                if choose_sentinel_watch(db, clusters.get(db.cluster_key)) is Watch.MONITOR:
                    for node in db.nodes:
                        roles[node.name] = await self._role(db, node)
            ha = self._settings.ha
            desired = plan_desired_monitors(
                databases,
                clusters,
                roles,
                self._settings.engine.internal_host,
                ha.sentinel_quorum,
                ha.down_after_ms,
                ha.failover_timeout_ms,
                self._admin_user,
                self._admin_password,
            )
            actions = plan_sentinel_actions(desired, observed)
            for action, line in zip(actions, describe_sentinel_actions(actions), strict=True):
                try:
                    await self._execute(action)
                except NodeError as e:
                    # Replanned at the next tick, from what Sentinel says then.
                    log.warning("%s failed: %s", line, e)
                    break
                done.append(line)
            return done

    async def _keep_timings(self) -> list[str]:
        """Shorten Sentinel's periods (amr.logic.sentinel_plan.SENTINEL_TIMINGS) if it runs without
        them, as after each of its restarts."""
        try:
            missing = await shorten_sentinel_periods(self._sentinel)
        except NodeError as e:
            log.warning("cannot set Sentinel's periods: %s", e)
            return []
        return [f"set Sentinel's {name} to {value} ms" for name, value in missing]

    async def forget(self, db: Database) -> None:
        """Remove the database's monitor, before its nodes are stopped (so that does not look like a
        failure to Sentinel). Raises NodeError if Sentinel cannot be reached: the delete is retried."""
        if db.clustering_policy is not ClusteringPolicy.NO_CLUSTER:
            return
        await self.stop_monitoring(db, "is being deleted")

    async def stop_monitoring(self, db: Database, why: str) -> None:
        """Remove the database's monitor whatever its clustering policy says now (a database being
        converted to a clustered policy was monitored as NoCluster). Raises NodeError if Sentinel
        cannot be reached."""
        cluster = self._store.get(Cluster, db.cluster_key)
        if cluster is not None and cluster.high_availability is not Toggle.ENABLED:
            return
        async with self._lock:
            if await self._sentinel.remove(monitor_name(db.uid)):
                log.info("sentinel no longer monitors %s: database %s %s", monitor_name(db.uid), db.id, why)

    async def _execute(self, action: SentinelAction) -> None:
        if isinstance(action, RemoveMonitor):
            await self._sentinel.remove(action.name)
        elif isinstance(action, AddMonitor):
            m = action.monitor
            credentials = (("auth-user", m.auth_user), ("auth-pass", m.auth_pass))
            await self._sentinel.monitor(action.name, m.host, m.port, m.quorum, (*credentials, *m.options))
        else:
            await self._sentinel.set(action.name, action.options)

    async def _role(self, db: Database, node: NodeAssignment) -> str | None:
        """What ROLE says first (``master`` or ``slave``); None if the node does not answer."""
        s = self._settings
        spec = NodeSpec(
            name=node.name,
            database_uid=db.uid,
            shard=node.shard,
            role=node.role,
            directory=f"{s.nodes_dir}/{db.uid}/{node.name}",
            socket=node_socket_path(str(s.run_dir), node.name),
            internal_host=s.engine.internal_host,
            port=node.port,
            config="",
        )
        admin = self._backend.admin(spec)
        try:
            reply = await admin.execute("ROLE")
        except NodeError:
            return None
        finally:
            await admin.close()
        if isinstance(reply, list) and reply:
            first = reply[0]
            return first.decode(errors="replace") if isinstance(first, bytes) else str(first)
        return None
