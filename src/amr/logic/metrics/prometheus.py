"""amr's metrics in Prometheus' text exposition format (version 0.0.4), as `amr monitord` serves them.

The values are the ones the collector writes to the metric store in the same tick (one computation,
``amr.logic.metrics.azure``, feeds both), named the Prometheus way: base units (seconds, bytes,
ratios of 0 to 1 instead of percent), snake case, an ``amr_`` prefix, and counters as ``_total``.

- **Counters** (Azure's ``Total`` metrics: hits, misses, Gets, Sets, commands, evictions, expiries,
  errors, the gateway's counts) are the sum of the interval increases since `amr monitord` started
  (``accumulate_totals``): monotonic, and back to zero when it restarts, which Prometheus reads as
  a counter reset. The store's sum of the same points over the same time is the same number.
- **Gauges** are the values of the latest sample; a series the latest sample did not have (a node
  that did not answer) is left out rather than repeated stale.

Labels: ``subscription``, ``resource_group``, ``cache`` and ``database`` on every series of a
database; a node's series add ``node`` and ``shard`` (and ``role``, primary or replica, on its
gauges: a counter keeps no role, so a failover does not split it); the gateway's add
``gateway_worker``; ``errors`` adds ``error_type``.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from amr.logic.metrics.azure import MetricValues

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DATABASE, NODE, GATEWAY = "database", "node", "gateway"


@dataclass(frozen=True)
class Family:
    """How one of amr's metrics (its Azure REST name) is exposed: name, type, help, what its value
    is divided by to be in base units, and what its ``InstanceId`` is (a node, a gateway worker, or
    none)."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    divisor: float = 1.0  # a division keeps 20 µs at 2e-05 s, where a product gives 1.9999999999999998e-05
    per: str = DATABASE


# By Azure REST name, in the order they are exposed.
FAMILIES: Mapping[str, Family] = {
    "cachehits": Family("amr_cache_hits_total", "counter", "Key lookups that found the key (Azure cachehits)."),
    "cachemisses": Family("amr_cache_misses_total", "counter", "Key lookups that did not find the key (Azure cachemisses)."),
    "getcommands": Family("amr_get_commands_total", "counter", "Read commands Azure counts as Gets (Azure getcommands)."),
    "setcommands": Family("amr_set_commands_total", "counter", "Write commands Azure counts as Sets, on primaries (Azure setcommands)."),
    "totalcommandsprocessed": Family("amr_commands_processed_total", "counter", "Commands run for clients, amr's own left out (Azure totalcommandsprocessed)."),
    "evictedkeys": Family("amr_evicted_keys_total", "counter", "Keys evicted by the maxmemory policy (Azure evictedkeys)."),
    "expiredkeys": Family("amr_expired_keys_total", "counter", "Keys that expired (Azure expiredkeys)."),
    "errors": Family("amr_errors_total", "counter", "Errors by type, such as a failover (Azure errors).", per=NODE),
    "gatewayConnections": Family("amr_gateway_connections_total", "counter", "Client connections the gateway accepted.", per=GATEWAY),
    "gatewayAuthFailures": Family("amr_gateway_auth_failures_total", "counter", "Failed AUTHs at the gateway.", per=GATEWAY),
    "gatewayBytesIn": Family("amr_gateway_received_bytes_total", "counter", "Bytes received from clients, counted when a connection closes.", per=GATEWAY),
    "gatewayBytesOut": Family("amr_gateway_sent_bytes_total", "counter", "Bytes sent to clients, counted when a connection closes.", per=GATEWAY),
    "connectedclients": Family("amr_connected_clients", "gauge", "Open client connections at the gateway (Azure connectedclients).", per=GATEWAY),
    "totalkeys": Family("amr_keys", "gauge", "Keys in the database, on primaries (Azure totalkeys)."),
    "usedmemory": Family("amr_used_memory_bytes", "gauge", "Memory used by primaries and replicas (Azure usedmemory)."),
    "usedmemorypercentage": Family("amr_used_memory_ratio", "gauge", "Primaries' used memory over their maxmemory (Azure usedmemorypercentage / 100).", 100),
    "operationsPerSecond": Family("amr_operations_per_second", "gauge", "Clients' commands per second over the last sample interval (Azure operationsPerSecond)."),
    "serverLoad": Family("amr_server_load_ratio", "gauge", "Busiest node's event loop busy time over the last interval (Azure serverLoad / 100).", 100),
    "geoReplicationHealthy": Family("amr_geo_replication_healthy", "gauge", "1 while geo-replication is healthy (always 1: amr has none) (Azure geoReplicationHealthy)."),
    "percentProcessorTime": Family("amr_node_cpu_ratio", "gauge", "A node's CPU time over the last interval (Azure percentProcessorTime / 100).", 100, NODE),
    "cacheRead": Family("amr_node_read_bytes_per_second", "gauge", "Bytes a node sent per second over the last interval (Azure cacheRead).", per=NODE),
    "cacheWrite": Family("amr_node_written_bytes_per_second", "gauge", "Bytes a node received per second over the last interval (Azure cacheWrite).", per=NODE),
    "cacheLatency": Family("amr_node_latency_seconds", "gauge", "Mean time of a node's data commands over the last interval (Azure cacheLatency).", 1e6, NODE),
}  # fmt: skip
COUNTER_METRICS = frozenset(m for m, f in FAMILIES.items() if f.kind == "counter")

NODE_UP = Family("amr_node_up", "gauge", "1 when the node answered the latest sample, 0 when it did not.")
LAST_SAMPLE = Family(
    "amr_monitor_last_sample_timestamp_seconds",
    "gauge",
    "When amr monitord took its latest sample (unix time).",
)


@dataclass(frozen=True)
class NodePlace:
    """Where a node is: its shard, and its role at the latest sample (None: it did not answer)."""

    shard: int
    primary: bool | None


@dataclass(frozen=True)
class DatabaseMetrics:
    """What is exposed of one database: the latest sample's values (gauges), the counters' totals
    since `amr monitord` started, and its nodes."""

    id: str  # the database's ARM resource id, as the control plane spells it
    latest: MetricValues = field(default_factory=dict)
    totals: MetricValues = field(default_factory=dict)
    nodes: Mapping[str, NodePlace] = field(default_factory=dict)


def accumulate_totals(totals: MetricValues, values: MetricValues) -> MetricValues:
    """The counters' totals after one more interval: each counter series' increase added (a series
    first seen starts from its increase, so every total is a sum of the store's points)."""
    new = dict(totals)
    for key, value in values.items():
        if key[0] in COUNTER_METRICS:
            new[key] = new.get(key, 0.0) + value
    return new


def parse_database_labels(database_id: str) -> dict[str, str]:
    """subscription, resource_group, cache and database of an ARM database id (segment names are
    case-insensitive; a segment that is missing gives an empty value)."""
    parts = [p for p in database_id.split("/") if p]
    names = {"subscriptions": "subscription", "resourcegroups": "resource_group",
             "redisenterprise": "cache", "databases": "database"}  # fmt: skip
    labels = dict.fromkeys(names.values(), "")
    for name, value in zip(parts, parts[1:], strict=False):
        label = names.get(name.lower())
        if label and not labels[label]:
            labels[label] = value
    return labels


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render_value(value: float) -> str:
    """A sample value as the text format writes it (integers without a fraction)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
    return f"{name}{{{text}}} {render_value(value)}" if text else f"{name} {render_value(value)}"


def _series_labels(
    family: Family, base: Mapping[str, str], dims: tuple[str, ...], nodes: Mapping[str, NodePlace]
) -> dict[str, str] | None:
    """A series' labels; None for a node series whose node is not (or no longer) known."""
    labels = dict(base)
    if family.per == GATEWAY and dims:
        labels["gateway_worker"] = dims[0].removeprefix("gateway-")
    elif family.per == NODE and dims:
        place = nodes.get(dims[0])
        if place is None:
            return None
        labels["node"], labels["shard"] = dims[0], str(place.shard)
        if family.kind == "gauge":
            if place.primary is None:
                return None
            labels["role"] = "primary" if place.primary else "replica"
        if len(dims) > 1:
            labels["error_type"] = dims[1]
    return labels


def _family_lines(family: Family, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    rows = sorted(samples, key=lambda s: sorted(s[0].items()))
    if not rows:
        return []
    head = [f"# HELP {family.name} {_escape_help(family.help)}", f"# TYPE {family.name} {family.kind}"]
    return head + [_sample(family.name, labels, value) for labels, value in rows]


def render_exposition(databases: Sequence[DatabaseMetrics], last_sample: float | None) -> str:
    """The whole exposition: every family with samples, HELP and TYPE once each, series sorted."""
    by_family: dict[str, list[tuple[dict[str, str], float]]] = {m: [] for m in FAMILIES}
    up: list[tuple[dict[str, str], float]] = []
    for db in databases:
        base = parse_database_labels(db.id)
        # Counters come from the totals, gauges from the latest sample, never the other way.
        for source, kind in ((db.totals, "counter"), (db.latest, "gauge")):
            for (metric, dims), value in source.items():
                family = FAMILIES.get(metric)
                if family is None or family.kind != kind:
                    continue
                labels = _series_labels(family, base, dims, db.nodes)
                if labels is not None:
                    by_family[metric].append((labels, value / family.divisor))
        for node, place in db.nodes.items():
            up.append(({**base, "node": node, "shard": str(place.shard)}, 0 if place.primary is None else 1))
    lines: list[str] = []
    for metric, family in FAMILIES.items():
        lines += _family_lines(family, by_family[metric])
    lines += _family_lines(NODE_UP, up)
    if last_sample is not None:
        lines += _family_lines(LAST_SAMPLE, [({}, last_sample)])
    return "\n".join(lines) + "\n" if lines else ""


METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class ScrapeAnswer:
    """What a request to the exposition listener gets: a status, headers, and whether it gets the
    exposition as its body (else ``message``)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    message: str = ""
    exposition: bool = False


def choose_scrape_answer(method: str, path: str, authorization: str, token: str) -> ScrapeAnswer:
    """Decide a request: ``GET``/``HEAD /metrics`` with ``Authorization: Bearer <token>`` gets the
    exposition; no or a wrong token 401, another path 404, another method 405. The token is
    compared in constant time, and a missing token is never taken for an empty one."""
    if path != METRICS_PATH:
        return ScrapeAnswer(404, message="not found: the exposition is at /metrics\n")
    if method not in ("GET", "HEAD"):
        return ScrapeAnswer(405, (("allow", "GET, HEAD"),), "method not allowed\n")
    scheme, _, given = authorization.strip().partition(" ")
    if (
        not token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return ScrapeAnswer(
            401,
            (("www-authenticate", 'Bearer realm="amr"'),),
            "a bearer token is needed: the one in AMR_HOME/monitor/prometheus.token\n",
        )
    return ScrapeAnswer(200, (("content-type", CONTENT_TYPE),), exposition=True)
