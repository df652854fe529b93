"""Sharded throughput and resharding speed, in one run.

Starts a private amr (tests/integration/amr_service.py's AmrService) with
``engine.max_shards_per_database = 4`` and creates three databases, high availability Disabled,
access keys Enabled, TLS:

    single        Balanced_B1  NoCluster          one shard, the spliced endpoint: the baseline
    oss4          Balanced_B20 OSSCluster         4 shards, a cluster client (per-node gateway ports)
    ec4           Balanced_B20 EnterpriseCluster  4 shards, a plain client (the gateway routes)

Throughput, SET and GET over 100,000 random keys, unpipelined (P1) and 16 commands per round trip
(P16), in alternating rounds (order rotated), median of the rounds:

- redis-benchmark (C, 50 connections) against ``single`` and ``ec4``: the endpoint's own ceiling;
  it has no cluster mode that works through the gateway (it dials the announced internal address).
- redis-py (4 processes, one connection each) against all three: ``redis.Redis`` for ``single``
  and ``ec4``, ``RedisCluster`` for ``oss4``.

Every row prints its ratio to ``single`` with the same client. Target: ec4 / single >= 0.6 on P1.

Resharding: a Balanced_B1 OSSCluster database (1 shard) filled to about 0.85 GB (its 1 GB SKU holds
no more) with 4 KiB values, then scaled to Balanced_B20 (4 shards) by PATCH of sku.name. Reported:
the whole operation's time (from the PATCH to the operation's Succeeded, new nodes included), the
value bytes that moved to the new shards (counted on them afterwards), and MB/s over the whole
operation. Target: >= 50 MB/s.

Installs redis-tools with apt-get if redis-benchmark is missing. Run with `make bench-sharded` or
`.venv/bin/python bench/sharded.py [--rounds R] [--seconds S] [--skip-reshard]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.cluster import RedisCluster

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.amr_service import AmrService  # noqa: E402

SHARDS = 4
KEYSPACE = 100_000
VALUE = b"v" * 32
BENCH_CLIENTS = 50
BENCH_REQUESTS = {1: 50_000, 16: 400_000}
PY_PROCESSES = 4
EC_TARGET = 0.6
RESHARD_TARGET_MBS = 50.0
RESHARD_VALUE = 4096
RESHARD_BYTES = int(0.85 * 1024**3)
RESULT = re.compile(r"^(SET|GET): ([\d.]+) requests per second", re.MULTILINE)
CACHE_API = {"api-version": "2025-07-01"}


# --- setup -----------------------------------------------------------------------------------------


def ensure_redis_benchmark() -> None:
    if shutil.which("redis-benchmark"):
        return
    print("installing redis-tools with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "redis-tools"], check=True, env=env, stdout=subprocess.DEVNULL
    )


def create(service: AmrService, name: str, sku: str, policy: str) -> tuple[int, str, int]:
    """A cache with its database; returns (port, primary key, shard count)."""
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--clustering-policy", policy, "--high-availability", "Disabled",
        "--access-keys-authentication", "Enabled", "--eviction-policy", "NoEviction",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    return (
        int(db["properties"]["port"]),
        service.primary_key(name),
        int(db["properties"].get("shardCount", 1)),
    )


# --- load ------------------------------------------------------------------------------------------


def redis_benchmark(port: int, key: str, ca_file: str, pipeline: int) -> float:
    """SET and GET ops/s (their mean) from redis-benchmark over TLS."""
    argv = [
        "redis-benchmark", "-h", "localhost", "-p", str(port), "--tls", "--cacert", ca_file, "-a", key,
        "-t", "set,get", "-r", str(KEYSPACE), "-d", str(len(VALUE)), "-c", str(BENCH_CLIENTS),
        "-n", str(BENCH_REQUESTS[pipeline]), "-P", str(pipeline), "-q",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    out = proc.stdout.replace("\r", "\n")
    found = {m.group(1): float(m.group(2)) for m in RESULT.finditer(out)}
    if proc.returncode != 0 or set(found) != {"SET", "GET"}:
        raise RuntimeError(f"redis-benchmark on port {port} failed: {proc.stderr[-300:]}{out[-300:]}")
    return (found["SET"] + found["GET"]) / 2


def _client(kind: str, port: int, key: str, ca_file: str) -> Any:
    if kind == "cluster":
        return RedisCluster(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=ca_file)
    return redis.Redis(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=ca_file)


def _py_worker(kind: str, port: int, key: str, ca_file: str, pipeline: int, seconds: float, out: Any) -> None:
    client = _client(kind, port, key, ca_file)
    rng = random.Random(os.getpid())
    ops = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pipeline == 1:
            k = f"key:{rng.randrange(KEYSPACE)}"
            client.set(k, VALUE)
            client.get(k)
            ops += 2
        else:
            pipe = client.pipeline(transaction=False)
            for _ in range(pipeline // 2):
                k = f"key:{rng.randrange(KEYSPACE)}"
                pipe.set(k, VALUE)
                pipe.get(k)
            pipe.execute()
            ops += pipeline
    out.put(ops / seconds)


def redis_py(kind: str, port: int, key: str, ca_file: str, pipeline: int, seconds: float) -> float:
    """ops/s of PY_PROCESSES redis-py processes, one connection each, SET+GET pairs."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_py_worker, args=(kind, port, key, ca_file, pipeline, seconds, out))
        for _ in range(PY_PROCESSES)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total


# --- resharding ------------------------------------------------------------------------------------


def fill(port: int, key: str, ca_file: str, total: int) -> int:
    """Write ``total`` bytes of RESHARD_VALUE-sized values; returns the number of keys."""
    client = redis.Redis(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=ca_file)
    value = os.urandom(RESHARD_VALUE // 2).hex().encode()
    count = total // RESHARD_VALUE
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"big:{i}", value)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    return count


def reshard(service: AmrService, rounds_note: list[str]) -> tuple[float, float, int]:
    """Scale a filled one-shard database to four; (seconds, moved MB, keys)."""
    port, key, shards = create(service, "grow", "Balanced_B1", "OSSCluster")
    assert shards == 1, f"Balanced_B1 runs {shards} shards"
    keys = fill(port, key, service.ca_file, RESHARD_BYTES)
    before = RedisCluster(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file)
    (origin,) = before.get_primaries()
    before.close()
    http: httpx.Client = service.http()
    path = service.cluster_path("rg", "grow")
    t0 = time.monotonic()
    r = http.patch(path, params=CACHE_API, json={"sku": {"name": "Balanced_B20"}})
    if r.is_error:
        raise RuntimeError(f"scaling refused: {r.status_code} {r.text}")
    url = r.headers["Azure-AsyncOperation"]
    while True:
        status = http.get(url).json().get("status")
        if status == "Succeeded":
            break
        if status in ("Failed", "Canceled"):
            raise RuntimeError(f"scaling ended {status}: {http.get(url).text}")
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    cluster = RedisCluster(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file)
    primaries = cluster.get_primaries()
    if len(primaries) != SHARDS:
        raise RuntimeError(f"{len(primaries)} shards after scaling, not {SHARDS}")
    per_node = {n.port: int(cluster.dbsize(target_nodes=n)) for n in primaries}
    if sum(per_node.values()) != keys:
        raise RuntimeError(f"{keys} keys written, {sum(per_node.values())} found after scaling")
    moved_keys = sum(count for node_port, count in per_node.items() if node_port != origin.port)
    rounds_note.append(f"{keys} keys of {RESHARD_VALUE} B, {moved_keys} moved")
    return elapsed, moved_keys * RESHARD_VALUE / 1e6, keys


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per redis-py measurement")
    parser.add_argument("--skip-reshard", action="store_true")
    args = parser.parse_args()
    ensure_redis_benchmark()
    service = AmrService({"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": str(SHARDS)}).start()
    failed = False
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        dbs = {
            "single": create(service, "single", "Balanced_B1", "NoCluster"),
            "oss4": create(service, "oss4", "Balanced_B20", "OSSCluster"),
            "ec4": create(service, "ec4", "Balanced_B20", "EnterpriseCluster"),
        }
        for name, (_, _, shards) in dbs.items():
            print(f"{name}: {shards} shard(s)", flush=True)
            if name != "single" and shards != SHARDS:
                raise RuntimeError(f"{name} runs {shards} shard(s), not {SHARDS}: nothing to compare")
        ca = service.ca_file
        rows: dict[tuple[str, str, int], list[float]] = {}
        plans = [("redis-benchmark", name, p) for name in ("single", "ec4") for p in (1, 16)]
        plans += [("redis-py", name, p) for name in ("single", "oss4", "ec4") for p in (1, 16)]
        for r in range(args.rounds):
            order = plans[r % len(plans) :] + plans[: r % len(plans)]
            for tool, name, pipeline in order:
                port, key, _ = dbs[name]
                if tool == "redis-benchmark":
                    ops = redis_benchmark(port, key, ca, pipeline)
                else:
                    kind = "cluster" if name == "oss4" else "plain"
                    ops = redis_py(kind, port, key, ca, pipeline, args.seconds)
                rows.setdefault((tool, name, pipeline), []).append(ops)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        print()
        print(f"{'client':<16}{'database':<10}{'pipeline':>9}{'ops/s':>12}{'vs single':>11}")
        for tool, name, pipeline in plans:
            ops = statistics.median(rows[(tool, name, pipeline)])
            base = statistics.median(rows[(tool, "single", pipeline)])
            ratio = ops / base
            mark = ""
            if name == "ec4" and pipeline == 1:
                ok = ratio >= EC_TARGET
                failed |= not ok
                mark = f"  target >= {EC_TARGET}x: {'PASS' if ok else 'FAIL'}"
            print(f"{tool:<16}{name:<10}{'P' + str(pipeline):>9}{ops:>12,.0f}{ratio:>10.2f}x{mark}")
        if not args.skip_reshard:
            # The throughput databases go first: their nodes hold CPU and node ports.
            for name in dbs:
                service.amr(
                    "redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True
                )
            notes: list[str] = []
            elapsed, moved_mb, _ = reshard(service, notes)
            speed = moved_mb / elapsed
            ok = speed >= RESHARD_TARGET_MBS
            failed |= not ok
            print()
            print(
                f"resharding Balanced_B1 -> Balanced_B20 (1 -> {SHARDS} shards), {notes[0]}: "
                f"{moved_mb:,.0f} MB moved, whole operation {elapsed:.1f} s, {speed:.0f} MB/s  "
                f"target >= {RESHARD_TARGET_MBS:.0f} MB/s: {'PASS' if ok else 'FAIL'}"
            )
    finally:
        service.destroy()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
