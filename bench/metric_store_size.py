"""The metric store's size per database over 30 days (docs/architecture.md#metrics quotes it).

Writes 30 days of one database through ``MetricStore.write`` as `amr monitor` does: a one-shard HA
database has 26 series (13 of the database, 4 per node for 2 nodes, 5 of 1 gateway worker:
connected clients and amr's 4 gateway counters). The first 29 days are written one point a minute (their raw points are past retention
anyway; each minute still gets its rollup), the last day every ``--interval`` seconds. Prints the
file's size, per database and per series.

    .venv/bin/python bench/metric_store_size.py [--databases 1] [--interval 10]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from amr.monitor.store import MetricStore

DATABASE_METRICS = (
    "cachehits", "cachemisses", "evictedkeys", "expiredkeys", "getcommands", "setcommands",
    "totalcommandsprocessed", "operationsPerSecond", "serverLoad", "totalkeys", "usedmemory",
    "usedmemorypercentage", "geoReplicationHealthy",
)  # fmt: skip
NODE_METRICS = ("cacheRead", "cacheWrite", "percentProcessorTime", "cacheLatency")


def values(rng: random.Random) -> dict[tuple[str, tuple[str, ...]], float]:
    out: dict[tuple[str, tuple[str, ...]], float] = {
        (m, ()): rng.randrange(100_000) for m in DATABASE_METRICS
    }
    for node in ("db-0-0", "db-0-1"):
        out.update({(m, (node,)): rng.random() * 1e6 for m in NODE_METRICS})
    for metric in (
        "connectedclients",
        "gatewayConnections",
        "gatewayAuthFailures",
        "gatewayBytesIn",
        "gatewayBytesOut",
    ):
        out[(metric, ("gateway-0",))] = rng.randrange(100)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=1)
    parser.add_argument("--interval", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricStore(Path(tmp) / "metrics.db")
        start = int(time.time()) // 86400 * 86400 - 30 * 86400
        last_day = start + 29 * 86400
        names = [
            f"/subscriptions/s/resourcegroups/g/providers/microsoft.cache/redisenterprise/c{i}"
            for i in range(args.databases)
        ]
        began = time.monotonic()
        t = start
        while t < start + 30 * 86400:
            store.write(t, {name: values(rng) for name in names})
            t += 60 if t < last_day else args.interval
        took = time.monotonic() - began
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = store.size_bytes()
        series = len(store.series(names[0]))
        print(f"{args.databases} database(s), {series} series each, 30 days written in {took:.0f} s")
        print(f"store: {size / 1e6:.1f} MB; per database {size / args.databases / 1e6:.1f} MB; "
              f"per series {size / args.databases / series / 1e3:.0f} kB")  # fmt: skip


if __name__ == "__main__":
    main()
