"""The metrics of ``Microsoft.Cache/redisEnterprise`` (Azure Monitor), and how amr computes each one
for a database from its nodes' samples over one interval, with Azure's semantics.

Which nodes a metric adds up: reads (hits, misses, Gets) and tenants' commands happen where clients
send them, so every node counts; a replica's Sets are its primary's writes again, so only the
primaries at the end of the interval count (after a failover the new primary has replicated every
write the old one took, so nothing is lost or counted twice); keys are counted on primaries (a
replica holds the same keys); used memory adds up primaries and replicas, as Azure's does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from amr.logic.metrics.deltas import TENANT_COMMANDS, NodeDeltas
from amr.logic.metrics.sample import NodeSample

INSTANCE_ID = "InstanceId"
ERROR_TYPE = "ErrorType"
NAMESPACE = "Microsoft.Cache/redisEnterprise"


@dataclass(frozen=True)
class MetricDefinition:
    """One Azure metric: its REST name, display name, unit, default aggregation, dimensions."""

    name: str
    display_name: str
    unit: str
    aggregation: str
    dimensions: tuple[str, ...] = ()


# reference/azure-managed-redis.md §1.14, in its order; ``errors`` from the older generated list.
METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("cachehits", "Cache Hits", "Count", "Total"),
    MetricDefinition(
        "cacheLatency", "Cache Latency Microseconds (Preview)", "Count", "Average", (INSTANCE_ID,)
    ),
    MetricDefinition("cachemisses", "Cache Misses", "Count", "Total"),
    MetricDefinition("cacheRead", "Cache Read", "BytesPerSecond", "Maximum", (INSTANCE_ID,)),
    MetricDefinition("cacheWrite", "Cache Write", "BytesPerSecond", "Maximum", (INSTANCE_ID,)),
    MetricDefinition("connectedclients", "Connected Clients", "Count", "Maximum", (INSTANCE_ID,)),
    MetricDefinition("evictedkeys", "Evicted Keys", "Count", "Total"),
    MetricDefinition("expiredkeys", "Expired Keys", "Count", "Total"),
    MetricDefinition("geoReplicationHealthy", "Geo Replication Healthy", "Count", "Maximum"),
    MetricDefinition("getcommands", "Gets", "Count", "Total"),
    MetricDefinition("operationsPerSecond", "Operations Per Second", "Count", "Maximum"),
    MetricDefinition("percentProcessorTime", "CPU", "Percent", "Maximum", (INSTANCE_ID,)),
    MetricDefinition("serverLoad", "Server Load", "Percent", "Maximum"),
    MetricDefinition("setcommands", "Sets", "Count", "Total"),
    MetricDefinition("totalcommandsprocessed", "Total Operations", "Count", "Total"),
    MetricDefinition("totalkeys", "Total Keys", "Count", "Maximum"),
    MetricDefinition("usedmemory", "Used Memory", "Bytes", "Maximum"),
    MetricDefinition("usedmemorypercentage", "Used Memory Percentage", "Percent", "Maximum"),
    MetricDefinition("errors", "Errors", "Count", "Maximum", (INSTANCE_ID, ERROR_TYPE)),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
ERROR_TYPES = (
    "Failover", "Dataloss", "UnresponsiveClients", "AOF", "RDB", "Import", "Export",
    "MicrosoftEntraAuthenticationFailure", "MicrosoftEntraTokenExpired",
)  # fmt: skip

# The command stats Azure adds up (reference §1.14).
GET_COMMANDS = ("get", "hget", "hgetall", "hmget", "mget", "getbit", "getrange")
SET_COMMANDS = (
    "set", "hset", "hmset", "hsetnx", "lset", "mset", "msetnx", "setbit", "setex", "setrange", "setnx",
)  # fmt: skip


# Left out of cacheLatency: connection and introspection commands, which amr's own probes run all the
# time (the collector's INFO everything alone takes longer than most data commands), so that the
# latency is the data commands'.
_NOT_LATENCY = (
    "auth", "hello", "ping", "echo", "info", "role", "multi", "exec", "discard", "replconf", "psync", "sync",
    "select",
)  # fmt: skip
_NOT_LATENCY_GROUPS = ("client|", "config|", "acl|", "cluster|", "command|")


def _data_command(name: str) -> bool:
    return name not in _NOT_LATENCY and not name.startswith(_NOT_LATENCY_GROUPS)


@dataclass(frozen=True)
class NodeInterval:
    """One node over one interval: its sample at the end and its increases (None: no interval,
    the node's first sample or one after a gap)."""

    node: str
    sample: NodeSample
    deltas: NodeDeltas | None
    was_primary: bool | None = None  # its role at the previous sample (None: unknown)


@dataclass(frozen=True)
class GatewayCounts:
    """What the gateway saw of one database at the end of the interval."""

    connections: Mapping[str, int]  # open client connections per gateway worker ("gateway-0")
    # amr's gateway counters' increases over the interval per worker (amr.logic.metrics.gateway;
    # a worker without a previous answer has none).
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


# (metric name, dimension values): value. Dimension values: () or (InstanceId,) or (InstanceId, ErrorType).
MetricValues = dict[tuple[str, tuple[str, ...]], float]


def _sum(values: Sequence[NodeInterval], take: str, primaries_only: bool = False) -> int:
    return sum(
        n.deltas.counters.get(take, 0)
        for n in values
        if n.deltas is not None and (n.sample.primary or not primaries_only)
    )


def _calls(n: NodeInterval, names: Sequence[str]) -> int:
    return sum(n.deltas.calls.get(c, 0) for c in names) if n.deltas is not None else 0


def compute_metrics(nodes: Sequence[NodeInterval], gateway: GatewayCounts | None = None) -> MetricValues:
    """A database's metric values for one interval from its nodes (and the gateway's counts).

    Counters (Total) are the interval's increases and are left out when no node has an interval
    (a gap is no data); gauges are the values at the end of the interval."""
    values: MetricValues = {}
    timed = [n for n in nodes if n.deltas is not None]
    primaries = [n for n in nodes if n.sample.primary]
    if timed:
        values[("cachehits", ())] = _sum(timed, "keyspace_hits")
        values[("cachemisses", ())] = _sum(timed, "keyspace_misses")
        values[("evictedkeys", ())] = _sum(timed, "evicted_keys")
        values[("expiredkeys", ())] = _sum(timed, "expired_keys")
        values[("getcommands", ())] = sum(_calls(n, GET_COMMANDS) for n in timed)
        values[("setcommands", ())] = sum(_calls(n, SET_COMMANDS) for n in timed if n.sample.primary)
        total = _sum(timed, TENANT_COMMANDS)
        values[("totalcommandsprocessed", ())] = total
        seconds = max(n.deltas.seconds for n in timed if n.deltas is not None)
        values[("operationsPerSecond", ())] = total / seconds
        load = 0.0
        for n in timed:
            d = n.deltas
            assert d is not None
            instance = (n.node,)
            values[("cacheRead", instance)] = d.counters.get("total_net_output_bytes", 0) / d.seconds
            values[("cacheWrite", instance)] = d.counters.get("total_net_input_bytes", 0) / d.seconds
            values[("percentProcessorTime", instance)] = 100.0 * d.cpu_seconds / d.seconds
            calls = sum(n for c, n in d.calls.items() if _data_command(c))
            if calls:
                usec = sum(u for c, u in d.usec.items() if _data_command(c))
                values[("cacheLatency", instance)] = usec / calls
            busy = d.counters.get("eventloop_duration_sum", 0) / (d.seconds * 1e6)
            load = max(load, min(100.0 * busy, 100.0))
            if n.was_primary is not None and n.was_primary != n.sample.primary and n.sample.primary:
                values[("errors", (n.node, "Failover"))] = 1
        values[("serverLoad", ())] = load
    if nodes:
        values[("totalkeys", ())] = sum(n.sample.keys for n in primaries)
        values[("usedmemory", ())] = sum(n.sample.gauges.get("used_memory", 0) for n in nodes)
        limit = sum(n.sample.gauges.get("maxmemory", 0) for n in primaries)
        if limit:
            used = sum(n.sample.gauges.get("used_memory", 0) for n in primaries)
            values[("usedmemorypercentage", ())] = 100.0 * used / limit
        values[("geoReplicationHealthy", ())] = 1
    if gateway is not None:
        for worker, count in gateway.connections.items():
            values[("connectedclients", (worker,))] = count
        for worker, counters in gateway.counters.items():
            for metric, increase in counters.items():
                values[(metric, (worker,))] = increase
    return values
