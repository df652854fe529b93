"""How long a client writing through a database's endpoint waits when the primary fails.

Starts a private amr (tests/integration/amr_service.py's AmrService), creates an HA Balanced_B0 cache
per clustering policy (the `amr ha` coordinator fails over both), and runs
a writer through the TLS endpoint (one connection, SET k<i> retried until acknowledged). Then, TRIALS
times each:

- unplanned: kill -9 of the current primary; the write gap is the time between the last write
  acknowledged before the kill and the first after it. The killed node must come back as a replica
  before the next trial.
- planned: a coordinated failover as a rolling restart does it (NoCluster: amr.nodes.handover, which
  pauses writes until the replica has them all, then switches; cluster: CLUSTER FAILOVER on the
  replica, the engine's own coordinated failover).

After the trials every acknowledged write is checked on the primary (lost writes are counted). The
baseline, measured in the same run, is the writer's own median time between acknowledgements with
nothing failing.

Run with `make bench-failover` or `.venv/bin/python bench/failover.py`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.amr_service import AmrService, wait_until  # noqa: E402
from tests.integration.ha_load import (  # noqa: E402
    Writer,
    admin_client,
    admin_password,
    endpoint_client,
    missing_writes,
    node_name,
    routes_of,
)

from amr.logic.security.node_credentials import ADMIN_USER  # noqa: E402
from amr.nodes.admin import UnixValkeyAdmin  # noqa: E402
from amr.nodes.handover import hand_over  # noqa: E402

TRIALS = 5
UNPLANNED_TARGET_S = 2.0
PLANNED_TARGET_S = 0.5


def _roles(service: AmrService, sockets: list[str]) -> tuple[str, str]:
    """(primary socket, replica socket) as the nodes say now."""
    masters = [s for s in sockets if admin_client(service.home, s).info("replication")["role"] == "master"]
    (primary,) = masters
    (replica,) = [s for s in sockets if s != primary]
    return primary, replica


async def _hand_over(service: AmrService, primary: str, replica: str) -> None:
    """amr's coordinated switchover (as a rolling restart does it) between two nodes' sockets."""
    password = admin_password(service.home, primary)
    old, new = (UnixValkeyAdmin(s, ADMIN_USER, password) for s in (primary, replica))
    port = int(admin_client(service.home, replica).info("server")["tcp_port"])
    try:
        await hand_over(old, new, "127.0.0.2", port)
    finally:
        await old.close()
        await new.close()


def _in_sync(service: AmrService, socket: str) -> bool:
    info = admin_client(service.home, socket).info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def _wait_healed(service: AmrService, policy: str, sockets: list[str], old_primary: str) -> None:
    """Until the old primary is an in-sync replica, so the next trial starts from a healthy database."""
    wait_until(lambda: _in_sync(service, old_primary), 60, what="the old primary back as a replica")


def _wait_writes(writer: Writer, after: float, count: int = 100) -> None:
    wait_until(lambda: writer.acked_after(after) >= count, 30, interval=0.01, what="writes to resume")


@dataclass
class Result:
    unplanned: list[float]
    planned: list[float]
    baseline: float
    acked: int
    missing: list[int]
    planned_from: int  # the first write acknowledged in the planned phase

    @property
    def lost_planned(self) -> int:
        return sum(1 for i in self.missing if i >= self.planned_from)


def run_policy(service: AmrService, policy: str) -> Result:
    name = f"bench{policy[:3].lower()}"
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--clustering-policy", policy, "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    port = int(show["properties"]["port"])
    key = service.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", name, "-g", "rg")[
        "primaryKey"
    ]
    sockets = list(routes_of(service.home, port)["candidates"])
    wait_until(lambda: _in_sync(service, sockets[1]), 20, what="the replica in sync")
    writer = Writer(endpoint_client(service.ca_file, port, key)).start()
    unplanned: list[float] = []
    kills: list[int] = []  # writes acknowledged when each kill came
    planned: list[float] = []
    try:
        started = time.monotonic()
        _wait_writes(writer, started, 500)
        steady = writer.ack_times[-400:]
        baseline = statistics.median(b - a for a, b in zip(steady, steady[1:], strict=False))
        for _ in range(TRIALS):
            primary, replica = _roles(service, sockets)
            victim = service.node_pids()[node_name(primary)]
            moment = time.monotonic()
            kills.append(len(writer.acked))
            os.kill(victim, signal.SIGKILL)
            _wait_writes(writer, moment)
            _wait_healed(service, policy, sockets, primary)
            unplanned.append(writer.gap_after(moment))
        planned_from = len(writer.acked)
        for _ in range(TRIALS):
            primary, replica = _roles(service, sockets)
            moment = time.monotonic()
            if policy == "NoCluster":
                asyncio.run(_hand_over(service, primary, replica))
            else:
                admin_client(service.home, replica).execute_command("CLUSTER", "FAILOVER")
            _wait_writes(writer, moment)
            _wait_healed(service, policy, sockets, primary)
            planned.append(writer.gap_after(moment))
    finally:
        writer.finish()
    primary, _ = _roles(service, sockets)
    missing = missing_writes(admin_client(service.home, primary), writer.acked)
    service.amr("redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True)
    lost_per_kill = []
    for i, count in enumerate(kills):
        until = kills[i + 1] if i + 1 < len(kills) else planned_from
        lost = [k for k in missing if writer.acked.index(k) in range(count - 200, until)]
        lost_per_kill.append(
            f"{len(lost)} (k{min(lost)}..k{max(lost)}, kill after k{count - 1})" if lost else "0"
        )
    print(f"{policy}: acknowledged writes missing per kill: {'; '.join(lost_per_kill)}", flush=True)
    return Result(unplanned, planned, baseline, len(writer.acked), missing, writer.acked[planned_from])


def main() -> int:
    service = AmrService().start()
    ok = True
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        for policy in ("NoCluster", "OSSCluster"):
            r = run_policy(service, policy)
            baseline = r.baseline
            for kind, gaps, target in (
                ("unplanned", r.unplanned, UNPLANNED_TARGET_S),
                ("planned", r.planned, PLANNED_TARGET_S),
            ):
                median = statistics.median(gaps)
                trials = " ".join(f"{g:.3f}" for g in gaps)
                verdict = "PASS" if median < target else "FAIL"
                ok = ok and median < target
                print(
                    f"{policy:10} {kind:9} write gap s: {trials}  median {median:.3f} s "
                    f"({median / baseline:.0f}x the {baseline * 1000:.1f} ms between writes)  "
                    f"target < {target} s: {verdict}"
                )
            ok = ok and r.lost_planned == 0
            print(
                f"{policy:10} {r.acked} writes acknowledged; lost: {len(r.missing) - r.lost_planned} "
                f"in {TRIALS} kills (asynchronous replication), {r.lost_planned} in {TRIALS} planned "
                f"failovers (target 0): {'PASS' if r.lost_planned == 0 else 'FAIL'}"
            )
    finally:
        service.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
