"""EnterpriseCluster routing cost: a 4-shard EnterpriseCluster database (the gateway routes each
command by slot) against a single-shard NoCluster database (the gateway splices bytes), in one run.

Starts a private amr (tests/integration/amr_service.py's AmrService) with
engine.max_shards_per_database = 4, creates both databases (Encrypted, HA Disabled), then runs SET+GET
with redis-py over TLS from a few client processes, unpipelined (P1) and in pipelines of 16 (P16),
alternating the targets each round, and prints the median ops/s and the ratio EC / single. The
target is P1 >= 0.6x. Run with `.venv/bin/python bench/enterprise_cluster.py [--rounds R]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.amr_service import AmrService, wait_until  # noqa: E402

SECONDS = 4.0


def _worker(port: int, key: str, ca: str, pipelined: bool, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    client = redis.Redis(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=ca)
    client.ping()
    done = i = 0
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        if pipelined:
            pipe = client.pipeline(transaction=False)
            for j in range(8):
                pipe.set(f"key:{i + j}", "x" * 16)
                pipe.get(f"key:{i + j}")
            pipe.execute()
            done, i = done + 16, i + 8
        else:
            client.set(f"key:{i}", "x" * 16)
            client.get(f"key:{i}")
            done, i = done + 2, i + 1
    queue.put(done)


def _measure(port: int, key: str, ca: str, pipelined: bool, clients: int) -> float:
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=_worker, args=(port, key, ca, pipelined, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / SECONDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    svc = AmrService({"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        targets: dict[str, tuple[int, str]] = {}
        for name, sku, policy in (
            ("ec", "Balanced_B20", "EnterpriseCluster"),
            ("one", "Balanced_B1", "NoCluster"),
        ):
            svc.amr_json(
                "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
                "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
                "--high-availability", "Disabled",
            )  # fmt: skip
            db = svc.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
            key = svc.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", name, "-g", "rg")
            targets[name] = (db["properties"]["port"], key["primaryKey"])
            probe = redis.Redis(
                host="localhost", port=targets[name][0], password=targets[name][1], ssl=True,
                ssl_ca_certs=svc.ca_file,
            )  # fmt: skip
            wait_until(probe.ping, 30, what=f"{name} answers")
        for pipelined in (False, True):
            results: dict[str, list[float]] = {"ec": [], "one": []}
            for r in range(args.rounds):
                for name in ("ec", "one") if r % 2 == 0 else ("one", "ec"):
                    port, key = targets[name]
                    results[name].append(_measure(port, key, svc.ca_file, pipelined, args.clients))
            ec, one = statistics.median(results["ec"]), statistics.median(results["one"])
            print(
                f"{'P16' if pipelined else 'P1 '}  EnterpriseCluster x4 {ec:9.0f} ops/s   "
                f"NoCluster x1 {one:9.0f} ops/s   ratio {ec / one:.2f}x",
                flush=True,
            )
    finally:
        svc.destroy()


if __name__ == "__main__":
    main()
