"""Isolation of the nodes, played as attacks by another local user (``nobody``) against a real amr.

The nodes run in amr's private network namespace (amr.nodes.netns): their TCP ports (replication, the
cluster bus) exist only there. So an unprivileged user can open no connection to a node, a cluster bus
or a replication port, and a user who binds a node's port on the host first (a squatter) never
receives a connection, let alone a credential, while the database restarts; the database keeps
working through its gateway endpoint all along."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import redis

from tests.integration.amr_service import AmrService, wait_until

# The attacker runs the system's Python as ``nobody``: the test's venv lives under /root, which
# nobody cannot enter.
ATTACKER_PYTHON = "/usr/bin/python3"


def _as_nobody(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATTACKER_PYTHON, "-c", textwrap.dedent(code)],
        user="nobody",
        group="nogroup",
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


def _node_ports(service: AmrService, cluster: str) -> list[int]:
    """The internal TCP ports of a database's nodes, from their valkey.conf."""
    uid = _uid(service, cluster)
    ports = []
    for conf in sorted((service.home / "nodes" / uid).glob("*/valkey.conf")):
        for line in conf.read_text().splitlines():
            if line.startswith("port "):
                ports.append(int(line.split()[1]))
    assert ports, f"no nodes of {cluster}"
    return ports


def _uid(service: AmrService, cluster: str) -> str:
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", cluster, "-g", "rg")
    port = show["properties"]["port"]
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    return str(Path(route["target"]).name.removesuffix(".sock").rsplit("-", 2)[0])


def _client(service: AmrService, cluster: str) -> redis.Redis:
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", cluster, "-g", "rg")
    return redis.Redis(
        "localhost", show["properties"]["port"], password=service.primary_key(cluster), ssl=True,
        ssl_ca_certs=service.ca_file, socket_timeout=5, decode_responses=True,
    )  # fmt: skip


def test_nobody_reaches_no_node_bus_or_replication_port(service: AmrService) -> None:
    service.amr(
        "redisenterprise", "create", "--cluster-name", "iso-oss", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", check=True,
    )  # fmt: skip
    service.amr(
        "redisenterprise", "create", "--cluster-name", "iso-noc", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", "NoCluster",
        check=True,
    )  # fmt: skip
    for cluster in ("iso-oss", "iso-noc"):
        assert _client(service, cluster).set("k", "v")
    targets = []
    for port in _node_ports(service, "iso-oss"):
        targets += [("127.0.0.2", port), ("127.0.0.2", port + 10000), ("127.0.0.1", port + 10000)]
    for port in _node_ports(service, "iso-noc"):
        targets += [("127.0.0.2", port), ("127.0.0.1", port)]
    attack = f"""
        import socket
        reached = []
        for host, port in {targets!r}:
            s = socket.socket()
            s.settimeout(1)
            try:
                s.connect((host, port))
                reached.append((host, port))
            except OSError:
                pass
            finally:
                s.close()
        print(reached)
    """
    result = _as_nobody(attack)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"nobody connected to {result.stdout.strip()}"
    # Not even this (root) process, in the host's network, reaches them: they are elsewhere.
    own = os.readlink("/proc/self/ns/net")
    pids = service.node_pids()
    assert pids
    for name, pid in pids.items():
        assert os.readlink(f"/proc/{pid}/ns/net") != own, f"node {name} runs in the host's network"
    # And yet replication and the cluster bus work inside: the replicas are in sync.
    for cluster in ("iso-oss", "iso-noc"):
        client = _client(service, cluster)
        wait_until(lambda c=client: c.execute_command("WAIT", 1, 1000) == 1, 20, what=f"{cluster} replica")


def test_a_squatter_on_a_node_port_receives_nothing_during_a_restart(service: AmrService) -> None:
    """The review bound a node's port during a restart and received ``AUTH amr-admin <password>``
    twelve times from the launcher's peer probe. Bind every port of the database's nodes as nobody,
    restart the database, and assert nobody ever gets a connection."""
    service.amr(
        "redisenterprise", "create", "--cluster-name", "iso-squat", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", "NoCluster",
        check=True,
    )  # fmt: skip
    client = _client(service, "iso-squat")
    for i in range(100):
        client.set(f"k{i}", i)
    ports = _node_ports(service, "iso-squat")
    squatter = subprocess.Popen(
        [ATTACKER_PYTHON, "-c", textwrap.dedent(f"""
            import select, socket, sys, time
            listeners = []
            for port in {ports!r}:
                s = socket.socket()
                s.bind(("127.0.0.2", port))
                s.listen(16)
                listeners.append(s)
            print("listening", flush=True)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                ready, _, _ = select.select(listeners, [], [], 0.2)
                for s in ready:
                    conn, _ = s.accept()
                    conn.settimeout(1)
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        data = b""
                    print("GOT", s.getsockname()[1], data, flush=True)
                    conn.close()
        """)],  # fmt: skip
        user="nobody", group="nogroup", extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd="/",
    )  # fmt: skip
    try:
        assert squatter.stdout is not None
        assert squatter.stdout.readline().strip() == "listening", squatter.stderr
        before = dict(service.node_pids())
        service.amr(
            "redisenterprise", "database", "restart", "--cluster-name", "iso-squat", "-g", "rg", "--rolling",
            check=True, timeout=180,
        )  # fmt: skip
        after = service.node_pids()
        uid = _uid(service, "iso-squat")
        restarted = [n for n in after if n.startswith(uid) and after[n] != before.get(n)]
        assert len(restarted) == 2, (before, after)
        assert _client(service, "iso-squat").mget([f"k{i}" for i in range(100)]) == [
            str(i) for i in range(100)
        ]
    finally:
        squatter.terminate()
        out, err = squatter.communicate(timeout=10)
    assert "GOT" not in out, f"the squatter received: {out}"
