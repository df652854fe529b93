"""The Azure Monitor metrics query's latency on a filled store (docs/benchmarks.md quotes it).

Writes 24 h of one one-shard HA database (26 series, as bench/metric_store_size.py) every
``--interval`` seconds through ``MetricStore.write``, as `amr monitord` does, so the store holds 24 h
of raw points and their one-minute rollups. Then runs the metrics route's work (plan the query,
read the store, aggregate, render the JSON body) for a 24 h PT1M query of 4 metrics, ``--runs``
times, and prints the median and the slowest, plus each series' point count (1,440).

    .venv/bin/python bench/metrics_query.py [--interval 10] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from metric_store_size import values  # this directory is on sys.path when run as a script

from amr.api.metrics_reader import query_store
from amr.api.wire_metrics import render_metric, render_metrics_response
from amr.logic.metrics.query import plan_metrics_query, render_timespan
from amr.monitor.store import MetricStore

RESOURCE = "/subscriptions/s/resourcegroups/rg/providers/microsoft.cache/redisenterprise/bench"
METRICS = "cachehits,getcommands,usedmemory,percentProcessorTime"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricStore(Path(tmp) / "metrics.db")
        now = int(time.time())
        now -= now % 60
        begun = time.perf_counter()
        for t in range(now - 86400 + args.interval, now + 1, args.interval):
            store.write(t, {RESOURCE: values(rng)})
        filled = time.perf_counter() - begun
        params = {"metricnames": METRICS, "timespan": render_timespan(now - 86400, now), "interval": "PT1M"}
        timings, body = [], {}
        for _ in range(args.runs):
            start = time.perf_counter()
            query = plan_metrics_query(params, now)
            metrics = [render_metric(RESOURCE, m, s, False) for m, s in query_store(store, RESOURCE, query)]
            body = render_metrics_response(RESOURCE, "eastus", query, metrics)
            json.dumps(body)
            timings.append(time.perf_counter() - start)
        store.close()
    points = [len(s["data"]) for m in body["value"] for s in m["timeseries"]]
    print(f"filled 24 h at {args.interval} s ({86400 // args.interval} samples, 26 series) in {filled:.1f} s")
    print(f"24 h PT1M query of 4 metrics ({METRICS}): points per series {points}")
    print(
        f"median {statistics.median(timings) * 1000:.1f} ms, slowest {max(timings) * 1000:.1f} ms "
        f"over {args.runs} runs (target: median under 100 ms)"
    )


if __name__ == "__main__":
    main()
