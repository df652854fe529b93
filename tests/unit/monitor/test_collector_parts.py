"""The collector's small decisions (amr.monitor.collector): which cache a database's metrics belong
to, and the gateway's connections of one database per worker."""

from __future__ import annotations

from typing import Any

import pytest

from amr.model.ha import WatchedDatabase
from amr.monitor.collector import _gateway_counts, resource_of

DB_ID = (
    "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Cache/redisEnterprise/Cache1/databases/default"
)


def test_a_databases_metrics_belong_to_its_cache_in_lower_case() -> None:
    assert (
        resource_of(DB_ID)
        == "/subscriptions/s/resourcegroups/rg/providers/microsoft.cache/redisenterprise/cache1"
    )


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ({}, None),  # no worker answered: no connectedclients at all, not zeros
        (
            {0: {"connections": {DB_ID: 3, "other": 9}}, 1: {"connections": {}}},
            {"gateway-0": 3, "gateway-1": 0},
        ),
        ({0: {"connections": "garbage"}}, {"gateway-0": 0}),
    ],
)
def test_gateway_counts(workers: dict[int, dict[str, Any]], expected: dict[str, int] | None) -> None:
    counts = _gateway_counts(WatchedDatabase(DB_ID, "d1", ()), workers)
    assert (counts.connections if counts is not None else None) == expected
