"""gateway.workers = 2: two gateway processes share every database port (SO_REUSEPORT), both take
connections, and the port keeps serving while one of them is killed and the supervisor restarts it."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until

CACHE_API = {"api-version": "2025-07-01"}
GROUP_API = {"api-version": "2024-03-01"}


@pytest.fixture(scope="module")
def two_workers() -> Iterator[AmrService]:
    service = AmrService(extra_env={"AMR_GATEWAY_WORKERS": "2"}).start()
    try:
        yield service
    finally:
        service.destroy()


def _create_database(service: AmrService) -> tuple[int, str]:
    http = service.http()
    group = f"/subscriptions/{service.subscription}/resourcegroups/rg-workers"
    http.put(group, params=GROUP_API, json={"location": "eastus"}).raise_for_status()
    cluster = service.cluster_path("rg-workers", "workers")
    http.put(
        cluster,
        params=CACHE_API,
        json={
            "location": "eastus",
            "sku": {"name": "Balanced_B0"},
            "properties": {"highAvailability": "Disabled", "publicNetworkAccess": "Enabled"},
        },
    ).raise_for_status()
    # A cache takes its database only once it is created (409 before, as in Azure).
    wait_until(
        lambda: http.get(cluster, params=CACHE_API).json()["properties"]["provisioningState"] == "Succeeded",
        10,
        what="the cache to be created",
    )
    db = f"{cluster}/databases/default"
    put = http.put(
        db,
        params=CACHE_API,
        json={
            "properties": {
                "accessKeysAuthentication": "Enabled",
                "clientProtocol": "Plaintext",
                "clusteringPolicy": "NoCluster",
            }
        },
    )
    put.raise_for_status()
    port = int(put.json()["properties"]["port"])
    key = http.post(f"{db}/listKeys", params=CACHE_API).raise_for_status().json()["primaryKey"]
    return port, key


def _worker_pids(service: AmrService) -> dict[str, int]:
    """Running gateway workers by supervisor program name."""
    client = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=5)
    out = {}
    for name in ("gateway", "gateway-1"):
        info = client.call_sync("getProcessInfo", name)
        if info["statename"] == "RUNNING":
            out[name] = int(info["pid"])
    return out


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _accepted_inodes(port: int, state: str = "01") -> set[int]:
    """Inodes of TCP sockets in ``state`` (ESTABLISHED; 0A: LISTEN) whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def _ping(port: int, key: str) -> bool:
    client = redis.Redis("127.0.0.1", port, password=key, socket_timeout=2, retry=None)
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_two_workers_share_the_port_and_survive_the_loss_of_one(two_workers: AmrService) -> None:
    service = two_workers
    pids = wait_until(lambda: len(_worker_pids(service)) == 2 and _worker_pids(service), 20, what="2 workers")
    port, key = _create_database(service)
    wait_until(lambda: _ping(port, key), 30, what="database answers PING")
    wait_until(
        lambda: all(_socket_inodes(pid) & _accepted_inodes(port, "0A") for pid in pids.values()),
        10,
        what="both workers listen on the database port",
    )

    # Both workers accept: the kernel spreads new connections over the SO_REUSEPORT sockets.
    clients = []
    try:
        for _ in range(40):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(f"AUTH {key}\r\nPING\r\n".encode())
            clients.append(c)
        for c in clients:
            assert c.recv(64).startswith(b"+OK")
        accepted = _accepted_inodes(port)
        per_worker = {name: len(_socket_inodes(pid) & accepted) for name, pid in pids.items()}
        assert sum(per_worker.values()) == 40, per_worker
        assert all(n > 0 for n in per_worker.values()), per_worker
        # Each worker audits its own connections: connections.jsonl and connections-1.jsonl.
        logs = service.home / "logs"
        wait_until(
            lambda: (
                _connects(logs / "connections.jsonl", port) + _connects(logs / "connections-1.jsonl", port)
                >= 40
            ),
            5,
            what="both workers audit their connects",
        )
        assert _connects(logs / "connections.jsonl", port) >= per_worker["gateway"]
        assert _connects(logs / "connections-1.jsonl", port) >= per_worker["gateway-1"]
    finally:
        for c in clients:
            c.close()

    # Kill one worker: the other keeps serving every new connection at once.
    os.kill(pids["gateway-1"], signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pids['gateway-1']}").exists() or _zombie(pids["gateway-1"]), 5)
    for _ in range(30):
        assert _ping(port, key)

    # And the supervisor brings the killed one back, which takes connections again.
    wait_until(
        lambda: _worker_pids(service).get("gateway-1", pids["gateway-1"]) != pids["gateway-1"],
        20,
        what="gateway-1 restarted",
    )
    new_pid = _worker_pids(service)["gateway-1"]

    def restarted_worker_accepts() -> bool:
        conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        try:
            wait_until(lambda: len(_accepted_inodes(port)) >= 20, 5)
            return bool(_socket_inodes(new_pid) & _accepted_inodes(port))
        finally:
            for c in conns:
                c.close()

    wait_until(restarted_worker_accepts, 20, interval=0.2, what="restarted worker accepts")
    assert _ping(port, key)


def _connects(path: Path, port: int) -> int:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if (e := json.loads(line))["event"] == "connect" and e["port"] == port)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_stop_ends_every_worker(two_workers: AmrService) -> None:
    pids = wait_until(lambda: len(_worker_pids(two_workers)) == 2 and _worker_pids(two_workers), 20)
    two_workers.stop()
    for pid in pids.values():
        wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, what=f"{pid} gone")
