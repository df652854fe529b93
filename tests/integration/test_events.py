"""A database's history with real processes: kill -9 of a node is a `restart` with both pids;
`amr stop` + `amr serve` is a `recovery` of each node, and no `restart`."""

from __future__ import annotations

import os
import signal
from typing import Any

from tests.integration.amr_service import AmrService, wait_until


def _events(service: AmrService, *extra: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = service.amr_json(
        "redisenterprise", "database", "events", "--cluster-name", "c1", "-g", "rg", *extra
    )
    return result


def _kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["properties"]["kind"], e["properties"].get("node", "")) for e in events]


def test_kill_is_a_restart_and_stop_serve_a_recovery_without_spurious_restarts() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        service.amr_json(
            "redisenterprise", "create", "--cluster-name", "c1", "-g", "rg", "-l", "eastus",
            "--sku", "Balanced_B0", "--clustering-policy", "NoCluster",
        )  # fmt: skip
        pids = service.node_pids()
        assert len(pids) == 2, pids
        assert _events(service) == []

        replica = next(name for name in pids if name.endswith("-0-1"))
        os.kill(pids[replica], signal.SIGKILL)

        def restarted() -> list[dict[str, Any]]:
            return [e for e in _events(service) if e["properties"]["kind"] == "restart"]

        (event,) = wait_until(restarted, 15, interval=0.3, what="a restart event")
        props = event["properties"]
        new_pids = service.node_pids()
        assert props["node"] == replica
        assert props["oldPid"] == pids[replica]
        assert props["newPid"] == new_pids[replica] != pids[replica]
        assert "supervisor restarted it" in props["cause"]
        assert event["type"] == "Microsoft.Cache/redisEnterprise/databases/events"
        assert event["id"].lower().endswith(f"/databases/default/events/{event['name']}".lower())

        service.stop()
        assert service.node_pids() == {}
        service.start()
        after = wait_until(
            lambda: len(service.node_pids()) == 2 and service.node_pids(), 30, what="nodes back after serve"
        )

        def recovered() -> list[dict[str, Any]]:
            found = [e for e in _events(service) if e["properties"]["kind"] == "recovery"]
            return found if len(found) == 2 else []

        recoveries = wait_until(recovered, 20, interval=0.3, what="a recovery event per node")
        assert {e["properties"]["node"] for e in recoveries} == set(pids)
        for e in recoveries:
            node = e["properties"]["node"]
            assert e["properties"]["newPid"] == after[node]
            assert e["properties"]["oldPid"] == new_pids[node]
        # Two more reconciler passes: still the one restart from the kill, nothing spurious from the
        # control plane coming back.
        service.wait_passes(2)
        events = _events(service)
        assert [k for k, _ in _kinds(events)].count("restart") == 1, events
        assert _kinds(_events(service, "--top", "2")) == _kinds(events)[-2:]
    finally:
        service.destroy()
