"""The `amr ha` coordinator: automatic failover for databases with high availability.

Each tick reads the watch file, probes every watched node at once (one snapshot), lets
``amr.logic.ha.failover`` decide which replicas to promote and which replaced NoCluster primaries to
demote, sends them ``CLUSTER FAILOVER TAKEOVER`` / ``REPLICAOF NO ONE`` / ``REPLICAOF <host> <port>``
and returns what it did as outcomes (amr.logic.outcomes). It runs as its own supervised program and
needs nothing from the control plane but the watch file, so a failover happens while the API is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from amr.errors import NodeError
from amr.ha.probe import NodeConnection, ProbeResult
from amr.ha.watch import WatchFile
from amr.logic.ha.failover import (
    describe_demotion,
    describe_ha_state,
    describe_takeover,
    plan_attempts_to_keep,
    plan_demotions,
    plan_failovers,
)
from amr.logic.outcomes import Outcome, Severity
from amr.logic.security.node_credentials import HA_USER
from amr.model.ha import HaWatch, NodeProbe, WatchedNode
from amr.settings import HaSettings

log = logging.getLogger(__name__)

# A probe that takes longer counts as no answer (a hung node); capped below down_after_ms so a
# slow probe cannot hide a failure.
PROBE_TIMEOUT = 0.3


@dataclass
class _Watched:
    node: WatchedNode
    connection: NodeConnection
    probe: NodeProbe
    error: str = ""  # the node answered, but refused us (AUTH): logged once per change


class Coordinator:
    """Keeps one connection and one ``NodeProbe`` per watched node, and promotes replicas."""

    def __init__(
        self,
        watch_file: WatchFile,
        password_for: Callable[[str], str],
        settings: HaSettings,
        internal_host: str,
        clock: Callable[[], float] = time.monotonic,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._watch_file = watch_file
        self._password_for = password_for  # the `amr-ha` password of a database, by uid
        self._settings = settings
        self._internal_host = internal_host  # where nodes listen for replication
        self._clock = clock
        self._timeout = max(0.01, min(probe_timeout, settings.down_after_ms / 3000))
        self._nodes: dict[str, _Watched] = {}
        self._attempts: dict[tuple[str, int], tuple[float, str]] = {}
        self._state = ""

    @property
    def probes(self) -> dict[str, NodeProbe]:
        return {name: w.probe for name, w in self._nodes.items()}

    async def tick(self) -> list[Outcome]:
        """One pass: read the watch, probe, decide, act; return what changed, one outcome each."""
        watch = self._watch_file.read()
        await self._follow(watch)
        results = await asyncio.gather(*(self._probe(w) for w in self._nodes.values()))
        for name, result, at in results:
            self._record(name, result, at)
        now = self._clock()
        s = self._settings
        probes = self.probes
        self._attempts = plan_attempts_to_keep(self._attempts, probes, now, s.failover_timeout_ms)
        outcomes: list[Outcome] = []
        for takeover in plan_failovers(
            watch, probes, now, s.down_after_ms, self._attempts, s.failover_timeout_ms, s.gone_after_ms,
            s.lagging_after_ms,
        ):  # fmt: skip
            self._attempts[takeover.key] = (now, takeover.replica.name)
            watched = self._nodes[takeover.replica.name]
            try:
                await watched.connection.execute(*takeover.command)
            except NodeError as e:
                outcomes.append(describe_takeover(takeover, str(e)))
                continue
            outcomes.append(describe_takeover(takeover))
        for demotion in plan_demotions(watch, probes):
            stale = self._nodes[demotion.stale.name]
            try:
                await stale.connection.execute("REPLICAOF", self._internal_host, str(demotion.successor.port))
            except NodeError as e:
                outcomes.append(describe_demotion(demotion, str(e)))
                continue
            outcomes.append(describe_demotion(demotion))
        state = describe_ha_state(watch, probes, now, s.down_after_ms, s.lagging_after_ms)
        if state != self._state:
            self._state = state
            outcomes.append(Outcome(Severity.INFO, state))
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``poll_ms`` until ``stop`` is set."""
        interval = max(self._settings.poll_ms, 10) / 1000
        try:
            while not stop.is_set():
                started = self._clock()
                try:
                    for outcome in await self.tick():
                        log.log(outcome.severity, "ha: %s", outcome.message)
                except Exception:
                    log.exception("HA tick failed; retrying")
                pause = max(0.0, interval - (self._clock() - started))
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        for watched in self._nodes.values():
            await watched.connection.close()
        self._nodes.clear()

    async def _follow(self, watch: HaWatch | None) -> None:
        """Open connections to nodes new in the watch, close those of nodes gone from it."""
        wanted = {n.name: n for db in (watch.databases if watch else ()) for s in db.shards for n in s.nodes}
        uids = {
            n.name: db.uid for db in (watch.databases if watch else ()) for s in db.shards for n in s.nodes
        }
        for name in list(self._nodes):
            if wanted.get(name) != self._nodes[name].node:
                await self._nodes.pop(name).connection.close()
        now = self._clock()
        for name, node in wanted.items():
            if name not in self._nodes:
                password = self._password_for(uids[name])
                connection = NodeConnection(node.socket, HA_USER, password, self._timeout)
                self._nodes[name] = _Watched(node, connection, NodeProbe(name, False, None, now))

    async def _probe(self, watched: _Watched) -> tuple[str, ProbeResult, float]:
        result = await watched.connection.probe()
        return watched.node.name, result, self._clock()

    def _record(self, name: str, result: ProbeResult, at: float) -> None:
        watched = self._nodes.get(name)
        if watched is None:
            return
        old = watched.probe
        if result.answered and result.error != watched.error:
            if result.error:
                log.warning("node %s answers but cannot be probed: %s", name, result.error)
            watched.error = result.error
        if not result.answered:
            gone_since = (old.gone_since if old.gone_since is not None else at) if result.gone else None
            watched.probe = NodeProbe(
                name, False, old.last_ok, old.watched_since, old.role, old.master_port, old.link,
                old.synced, old.offset, gone_since,
            )  # fmt: skip
            return
        view = result.view
        watched.probe = NodeProbe(
            name,
            True,
            at,
            old.watched_since,
            view.role if view else None,
            view.master_port if view else None,
            view.link if view else "",
            view.synced if view else False,
            view.offset if view else 0,
            replid=view.replid if view else "",
            replid2=view.replid2 if view else "",
        )
