"""One sample of every database, made into Azure's metrics and written to the metric store.

Each tick reads every watched node at once (amr.monitor.nodes) and the gateway's workers, then, per
database, turns each node's sample and the one before into the interval's increases
(``amr.logic.metrics.deltas``) and those into Azure's metric values (``amr.logic.metrics.azure``), and
writes them in one transaction. The previous samples are kept in memory only: after a restart of
`amr monitord` the first sample is a baseline, so the time it was stopped stays a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from amr.logic.metrics.azure import GatewayCounts, MetricValues, NodeInterval, compute_metrics
from amr.logic.metrics.deltas import plan_deltas
from amr.logic.metrics.gateway import GatewaySample, parse_gateway_answer, plan_gateway_deltas
from amr.logic.metrics.sample import NodeSample
from amr.logic.security.node_credentials import database_uid_of_node
from amr.model.ha import HaWatch, WatchedDatabase
from amr.monitor.nodes import NodeReader
from amr.monitor.prometheus import PrometheusView
from amr.monitor.store import MetricStore

log = logging.getLogger(__name__)

# A node's previous sample older than this many intervals is not the start of an interval: the
# collector or the node was away, and that time reads as no data.
MAX_GAP_INTERVALS = 2.5


def resource_of(database_id: str) -> str:
    """The cache (``Microsoft.Cache/redisEnterprise``) a database's metrics belong to, as the
    store keys it: its resource id in lower case (Azure's ids are case-insensitive)."""
    return database_id.split("/databases/")[0].lower()


@dataclass
class Collector:
    """Samples the databases of ``watch()`` into ``store``; ``password_for(database_uid)`` is the
    ``amr-monitor`` password on that database's nodes; ``gateway()`` asks the gateway's workers."""

    watch: Callable[[], HaWatch | None]
    store: MetricStore
    password_for: Callable[[str], str]
    gateway: Callable[[], Awaitable[dict[int, dict[str, Any]]]]
    interval: float
    timeout: float
    readers: dict[str, NodeReader] = field(default_factory=dict)
    previous: dict[str, NodeSample] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    previous_gateway: dict[int, GatewaySample] = field(default_factory=dict)
    # What the Prometheus exposition serves: each tick's values once the store has them.
    view: PrometheusView | None = None

    def _reader(self, socket: str) -> NodeReader:
        reader = self.readers.get(socket)
        if reader is None:
            password = self.password_for(database_uid_of_node(socket))
            reader = self.readers[socket] = NodeReader(socket, password, self.timeout)
        return reader

    async def tick(self, at: float) -> str:
        """Sample everything once; the outcome says what was written."""
        watch = self.watch() or HaWatch()
        nodes = [(db, n) for db in watch.databases for s in db.shards for n in s.nodes]
        self._forget({n.socket for _, n in nodes}, {n.name for _, n in nodes})
        samples, workers = await asyncio.gather(
            asyncio.gather(*(self._reader(n.socket).read() for _, n in nodes)), self.gateway()
        )
        by_database: dict[str, list[NodeInterval]] = {db.id: [] for db in watch.databases}
        answered = 0
        for (db, node), sample in zip(nodes, samples, strict=True):
            self._note(node.name, self.readers[node.socket].problem)
            if sample is None:
                continue
            answered += 1
            prev = self.previous.get(node.name)
            deltas = plan_deltas(prev, sample, self.interval * MAX_GAP_INTERVALS)
            was_primary = prev.primary if prev is not None and deltas is not None else None
            by_database[db.id].append(NodeInterval(node.name, sample, deltas, was_primary))
            self.previous[node.name] = sample
        answers = {w: s for w, a in workers.items() if (s := parse_gateway_answer(a)) is not None}
        values: dict[str, MetricValues] = {}  # by database id
        for db in watch.databases:
            counts = _gateway_counts(db, answers, self.previous_gateway)
            computed = compute_metrics(by_database[db.id], counts)
            if computed:
                values[db.id] = computed
        self.previous_gateway = answers
        if values:
            by_resource = {resource_of(i): v for i, v in values.items()}
            await asyncio.to_thread(self.store.write, at, by_resource)
        if self.view is not None:
            self.view.record(at, watch, values, by_database)
        return (
            f"sampled {answered} of {len(nodes)} node(s) of {len(watch.databases)} database(s), "
            f"{len(workers)} gateway worker(s)"
        )

    def _forget(self, sockets: set[str], names: set[str]) -> None:
        """Close the connections of nodes no longer watched (deleted, moved), and forget them."""
        for socket in [s for s in self.readers if s not in sockets]:
            self.readers.pop(socket).close()
        for name in [n for n in self.previous if n not in names]:
            del self.previous[name]
            self.problems.pop(name, None)

    def _note(self, node: str, problem: str) -> None:
        """Log a node's problem once when it starts and once when it ends."""
        before = self.problems.get(node, "")
        if problem == before:
            return
        if problem:
            log.warning("no sample of node %s: %s", node, problem)
            self.problems[node] = problem
        else:
            log.info("node %s answers the collector again", node)
            self.problems.pop(node, None)

    def close(self) -> None:
        self._forget(set(), set())


def _gateway_counts(
    db: WatchedDatabase, answers: dict[int, GatewaySample], previous: dict[int, GatewaySample]
) -> GatewayCounts | None:
    """The database's open connections on each gateway worker that answered, and its counters'
    increases since that worker's previous answer (None: no worker answered)."""
    if not answers:
        return None
    connections, counters = {}, {}
    for worker, sample in answers.items():
        name = f"gateway-{worker}"
        connections[name] = sample.connections.get(db.id, 0)
        deltas = plan_gateway_deltas(previous.get(worker), sample, db.id)
        if deltas is not None:
            counters[name] = deltas
    return GatewayCounts(connections, counters)
