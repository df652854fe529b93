"""The gateway's counters of one database, as `amr monitord` reads them from each worker's answer
to ``{"op": "stats"}`` (amr.gateway.client_directory): open connections now, and since the worker
started, per database, its connections accepted, failed AUTHs and the bytes of connections that
closed. A worker's counters start from zero when it restarts (a new ``started``).

These are amr's own metrics beside Azure's (``GATEWAY_METRICS``), per worker (``InstanceId``
``gateway-<n>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amr.logic.metrics.azure import INSTANCE_ID, MetricDefinition

# Audit event totals -> amr's metric names.
GATEWAY_COUNTERS = {
    "connect": "gatewayConnections",
    "auth_failure": "gatewayAuthFailures",
    "bytesIn": "gatewayBytesIn",
    "bytesOut": "gatewayBytesOut",
}
GATEWAY_METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("gatewayConnections", "Connections accepted", "Count", "Total", (INSTANCE_ID,)),
    MetricDefinition("gatewayAuthFailures", "Failed AUTHs", "Count", "Total", (INSTANCE_ID,)),
    MetricDefinition("gatewayBytesIn", "Bytes in (closed connections)", "Bytes", "Total", (INSTANCE_ID,)),
    MetricDefinition("gatewayBytesOut", "Bytes out (closed connections)", "Bytes", "Total", (INSTANCE_ID,)),
)


@dataclass(frozen=True)
class GatewaySample:
    """One worker's answer: when it started, open connections and event totals per database."""

    started: float
    connections: Mapping[str, int] = field(default_factory=dict)
    totals: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def parse_gateway_answer(answer: Mapping[str, Any]) -> GatewaySample | None:
    """A worker's answer read defensively (None: not an answer to the stats question)."""
    started = answer.get("started")
    if not isinstance(started, int | float) or isinstance(started, bool):
        return None
    totals = answer.get("totals")
    return GatewaySample(
        float(started),
        _counts(answer.get("connections")),
        {str(db): _counts(t) for db, t in totals.items()} if isinstance(totals, dict) else {},
    )


def plan_gateway_deltas(
    prev: GatewaySample | None, cur: GatewaySample, database_id: str
) -> dict[str, int] | None:
    """A database's counter increases on one worker since its previous answer, by amr metric name;
    None without a previous answer (a baseline). A restarted worker counts from zero."""
    if prev is None:
        return None
    now = cur.totals.get(database_id, {})
    before = {} if prev.started != cur.started else prev.totals.get(database_id, {})
    deltas = {}
    for event, metric in GATEWAY_COUNTERS.items():
        value, old = now.get(event, 0), before.get(event, 0)
        deltas[metric] = value if value < old else value - old
    return deltas
