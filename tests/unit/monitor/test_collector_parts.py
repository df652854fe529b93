"""The collector's small decisions (amr.monitor.collector): which cache a database's metrics belong
to, and the gateway's counts of one database per worker."""

from __future__ import annotations

from amr.logic.metrics.gateway import GatewaySample
from amr.model.ha import WatchedDatabase
from amr.monitor.collector import _gateway_counts, resource_of

DB_ID = (
    "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Cache/redisEnterprise/Cache1/databases/default"
)
DB = WatchedDatabase(DB_ID, "d1", ())


def test_a_databases_metrics_belong_to_its_cache_in_lower_case() -> None:
    assert (
        resource_of(DB_ID)
        == "/subscriptions/s/resourcegroups/rg/providers/microsoft.cache/redisenterprise/cache1"
    )


def test_no_worker_answered_is_no_connectedclients_not_zeros() -> None:
    assert _gateway_counts(DB, {}, {}) is None


def test_connections_per_worker_and_increases_since_the_previous_answer() -> None:
    before = {0: GatewaySample(1.0, {}, {DB_ID: {"connect": 4, "auth_failure": 1}})}
    now = {
        0: GatewaySample(1.0, {DB_ID: 3, "other": 9}, {DB_ID: {"connect": 7, "auth_failure": 1}}),
        1: GatewaySample(5.0, {}, {}),  # no previous answer: a baseline
    }
    counts = _gateway_counts(DB, now, before)
    assert counts is not None
    assert counts.connections == {"gateway-0": 3, "gateway-1": 0}
    assert counts.counters == {
        "gateway-0": {
            "gatewayConnections": 3,
            "gatewayAuthFailures": 0,
            "gatewayBytesIn": 0,
            "gatewayBytesOut": 0,
        }
    }
