"""How fast live slot migration moves data when a clustered cache scales.

Starts a private amr (tests/integration/amr_service.py's AmrService) with up to 4 shards per
database, creates an HA OSSCluster Balanced_B10 cache (2 shards), loads about DATA_MB of values of
VALUE_SIZE bytes straight into the shard primaries (admin user over their unix sockets, pipelined, so
loading does not dominate the run), then scales to Balanced_B20 (4 shards: half the slots, so half the
data, move) and back to Balanced_B10 (the two leaving shards' slots move back). For each step it prints
the data moved (the dataset bytes of the slots that changed shard), the time from the PATCH to the
end of the long-running operation, and MB/s. Every key is checked after each step.

Run with `.venv/bin/python bench/resharding.py [DATA_MB] [VALUE_SIZE]`.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.amr_service import AmrService  # noqa: E402
from tests.integration.ha_load import admin_client  # noqa: E402

DATA_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
TASK_DONE = re.compile(r"done after \d+ rounds: (\d+) slots in ([\d.]+) s")
VALUE_SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 1024


def primaries(svc: AmrService) -> list[object]:
    """Admin clients of the shard primaries (nodes that hold slots)."""
    result = []
    for name in sorted(svc.node_pids()):
        client = admin_client(svc.home, str(svc.home / "run" / f"{name}.sock"))
        myself = next(
            line for line in client.execute_command("CLUSTER", "NODES").splitlines() if "myself" in line
        )
        if "master" in myself and len(myself.split()) > 8:
            result.append(client)
    return result


def dataset_bytes(svc: AmrService) -> int:
    return sum(int(c.memory_stats()["dataset.bytes"]) for c in primaries(svc))  # type: ignore[attr-defined]


def load(svc: AmrService, keys: int) -> None:
    value = b"v" * VALUE_SIZE
    clients = primaries(svc)
    by_port = {}
    for c in clients:
        port = int(c.info("server")["tcp_port"])  # type: ignore[attr-defined]
        by_port[port] = c
    slots = clients[0].execute_command("CLUSTER", "SLOTS")  # type: ignore[attr-defined]
    owner = {}
    for entry in slots:  # [first, last, [host, port, id, ...], replicas...]
        for s in range(int(entry[0]), int(entry[1]) + 1):
            owner[s] = by_port[int(entry[2][1])]
    from redis.crc import key_slot

    pipes: dict[int, object] = {}
    for i in range(keys):
        k = f"key:{i}".encode()
        c = owner[key_slot(k)]
        pipe = pipes.setdefault(id(c), c.pipeline(transaction=False))  # type: ignore[attr-defined]
        pipe.set(k, value)  # type: ignore[attr-defined]
        if i % 2000 == 1999:
            for p in pipes.values():
                p.execute()  # type: ignore[attr-defined]
    for p in pipes.values():
        p.execute()  # type: ignore[attr-defined]


def check(svc: AmrService) -> int:
    """Keys held by the shard primaries."""
    return sum(int(c.dbsize()) for c in primaries(svc))  # type: ignore[attr-defined]


def step(svc: AmrService, sku: str, moved_fraction: float, total: int) -> None:
    log_path = svc.home / "logs" / "api.log"
    seen = len(log_path.read_bytes())
    start = time.monotonic()
    svc.amr(
        "redisenterprise",
        "update",
        "--cluster-name",
        "bench",
        "-g",
        "rg",
        "--sku",
        sku,
        check=True,
        timeout=900,
    )
    elapsed = time.monotonic() - start
    moved = total * moved_fraction / 1e6
    # The resharding tasks' own times (a task that found nothing to move logs "0 slots").
    log = log_path.read_bytes()[seen:].decode()
    migration = sum(float(m[2]) for m in TASK_DONE.finditer(log) if int(m[1]) > 0)
    print(
        f"{sku}: moved ~{moved:.0f} MB; migration {migration:.1f} s = {moved / migration:.0f} MB/s; "
        f"whole operation (nodes started, moves, cleanup) {elapsed:.1f} s = {moved / elapsed:.0f} MB/s"
    )


def main() -> None:
    svc = AmrService({"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        svc.amr_json(
            "redisenterprise", "create", "--cluster-name", "bench", "-g", "rg", "-l", "eastus",
            "--sku", "Balanced_B10", "--access-keys-authentication", "Enabled",
        )  # fmt: skip
        keys = DATA_MB * 1024 * 1024 // VALUE_SIZE
        t = time.monotonic()
        load(svc, keys)
        total = dataset_bytes(svc)
        print(
            f"loaded {keys} keys of {VALUE_SIZE} B, dataset {total / 1e6:.0f} MB in {time.monotonic() - t:.1f} s"
        )
        step(svc, "Balanced_B20", 0.5, total)
        assert check(svc) == keys, "keys lost"
        step(svc, "Balanced_B10", 0.5, total)
        assert check(svc) == keys, "keys lost"
        print("every key still there")
    finally:
        svc.destroy()


if __name__ == "__main__":
    main()
