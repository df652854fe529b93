"""The README's quick start, end to end: the real CLI, the real API and redis-py over TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.amr_service import AmrService, wait_until
from tests.quickstart import QUICKSTART

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_flow_then_group_delete_removes_everything(amr_service: AmrService) -> None:
    env = dict(amr_service.env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["bash", "-c", QUICKSTART], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "PING: True" in out
    assert "GET greeting (miss): None" in out
    assert "SET greeting with a 60 s TTL: True" in out
    assert "GET greeting (hit): Hello from amr!" in out
    ttl = int(out.split("TTL greeting:")[1].split()[0])
    assert 0 < ttl <= 60

    # The database runs a primary and (HA is on by default) a replica that follows it.
    nodes = amr_service.node_pids()
    assert len(nodes) == 2, nodes
    db_dirs = list((amr_service.home / "nodes").iterdir())
    assert len(db_dirs) == 1

    deleted = amr_service.amr("group", "delete", "-n", "rg-amr-lab", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    wait_until(lambda: not amr_service.node_pids(), 10, what="node processes to exit")
    assert list((amr_service.home / "nodes").iterdir()) == []
    assert list((amr_service.home / "run").glob("*-*-*.sock")) == []  # nodes' (gateway-<n>.sock stays)
    assert amr_service.amr_json("group", "list") == []
    assert amr_service.amr_json("redisenterprise", "list") == []
