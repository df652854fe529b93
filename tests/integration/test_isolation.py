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
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from amr.logic.security.node_credentials import CredentialMasters
from tests.integration.amr_service import AmrService, wait_until

# The attacker runs the system's Python as ``nobody``: the test's venv lives under /root, which
# nobody cannot enter.
ATTACKER_PYTHON = "/usr/bin/python3"


@pytest.fixture(autouse=True)
def _delete_caches_after(service: AmrService) -> Iterator[None]:
    """Each test's caches go when it ends: the service's node port range is small."""
    yield
    for cache in service.amr_json("redisenterprise", "list", "-g", "rg"):
        service.amr(
            "redisenterprise", "delete", "--cluster-name", cache["name"], "-g", "rg", "--yes", check=True
        )


def _create(service: AmrService, cluster: str, policy: str) -> None:
    """An HA Balanced_B0 cache with access keys, its database of clustering ``policy``."""
    service.amr(
        "redisenterprise", "create", "--cluster-name", cluster, "-g", "rg", "-l", "eastus", "--sku", "Balanced_B0",
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy, check=True,
    )  # fmt: skip


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
    _create(service, "iso-oss", "OSSCluster")
    _create(service, "iso-noc", "NoCluster")
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
    _create(service, "iso-squat", "NoCluster")
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


def _secrets_of(service: AmrService, cluster: str) -> dict[str, str]:
    masters = CredentialMasters(
        admin=(service.home / "secrets" / "admin.secret").read_text().strip(),
        ha=(service.home / "secrets" / "ha.secret").read_text().strip(),
        gateway=(service.home / "secrets" / "gateway.secret").read_text().strip(),
        monitor=(service.home / "secrets" / "monitor.secret").read_text().strip(),
    )
    c = masters.for_database(_uid(service, cluster))
    return {
        "amr-admin": c.admin, "amr-replication": c.replication, "amr-ha": c.ha, "amr-gateway": c.gateway,
        "amr-monitor": c.monitor,
    }  # fmt: skip


def _node_sockets(service: AmrService, cluster: str) -> list[str]:
    uid = _uid(service, cluster)
    return sorted(str(p) for p in (service.home / "run").glob(f"{uid}-*.sock"))


def test_each_database_and_purpose_has_its_own_credentials_which_appear_in_no_config_log_or_process(
    service: AmrService,
) -> None:
    for cluster in ("iso-cred-a", "iso-cred-b"):
        _create(service, cluster, "NoCluster")
        _client(service, cluster).set("k", cluster)
    mine, theirs = _secrets_of(service, "iso-cred-a"), _secrets_of(service, "iso-cred-b")
    a_socket, b_socket = _node_sockets(service, "iso-cred-a")[0], _node_sockets(service, "iso-cred-b")[0]

    def login(socket: str, user: str, password: str) -> redis.Redis:
        node = redis.Redis(unix_socket_path=socket, username=user, password=password, socket_timeout=5)
        node.ping()
        return node

    # One database's admin password opens that database's nodes and no other's.
    assert login(a_socket, "amr-admin", mine["amr-admin"]).get("k") == b"iso-cred-a"
    for user, password in mine.items():
        with pytest.raises(redis.AuthenticationError):
            login(b_socket, user, password)
    # The narrow users may do only their job: no data, no configuration.
    for user in ("amr-replication", "amr-ha", "amr-gateway", "amr-monitor"):
        node = login(a_socket, user, mine[user])
        for command in (("GET", "k"), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                node.execute_command(*command)
    assert login(a_socket, "amr-ha", mine["amr-ha"]).execute_command("ROLE")[0] in (b"master", b"slave")
    # No internal password in clear where the README says there is none, nor in logs or ps.
    secrets = [*mine.values(), *theirs.values()]
    for conf in (service.home / "nodes").glob("*/*/valkey.conf"):
        text = conf.read_text()
        assert not [s for s in secrets if s in text], conf
        assert "primaryauth" not in text and "masterauth" not in text
    for log in (service.home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], log
    for pid in service.pids_under_home():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not [s for s in secrets if s in cmdline], cmdline
    # The replicas authenticate with their own database's replication user, and they are in sync.
    for cluster in ("iso-cred-a", "iso-cred-b"):
        replica = [s for s in _node_sockets(service, cluster) if _role(service, s, cluster) == "slave"]
        assert replica, cluster
        node = login(replica[0], "amr-admin", _secrets_of(service, cluster)["amr-admin"])
        assert node.config_get("primaryuser")["primaryuser"] == "amr-replication"
        assert node.info("replication")["master_link_status"] == "up"


def _role(service: AmrService, socket: str, cluster: str) -> str:
    node = redis.Redis(
        unix_socket_path=socket, username="amr-admin", password=_secrets_of(service, cluster)["amr-admin"],
        decode_responses=True,
    )  # fmt: skip
    return str(node.info("replication")["role"])


def test_nodes_an_older_amr_started_get_their_own_credentials_live(service: AmrService) -> None:
    """An older amr gave every node of every database one admin password (the master secret itself)
    and let replicas log in as the admin user. Put a database's nodes back in that state; the control
    plane logs in with the old password once, sets every user live, and replication keeps working."""
    _create(service, "iso-legacy", "NoCluster")
    client = _client(service, "iso-legacy")
    client.set("before", "1")
    master = (service.home / "secrets" / "admin.secret").read_text().strip()
    own = _secrets_of(service, "iso-legacy")
    sockets = _node_sockets(service, "iso-legacy")
    for socket in sockets:
        node = redis.Redis(unix_socket_path=socket, username="amr-admin", password=own["amr-admin"])
        node.execute_command("CONFIG", "SET", "primaryuser", "amr-admin", "primaryauth", master)
        node.execute_command("ACL", "DELUSER", "amr-replication", "amr-ha")
        node.execute_command("ACL", "SETUSER", "amr-admin", "reset", "on", f">{master}", "~*", "&*", "+@all")
        node.close()

    def converged() -> bool:
        for socket in sockets:
            node = redis.Redis(
                unix_socket_path=socket,
                username="amr-admin",
                password=own["amr-admin"],
                decode_responses=True,
            )
            try:
                if node.config_get("primaryuser")["primaryuser"] != "amr-replication":
                    return False
                if not node.execute_command("ACL", "GETUSER", "amr-ha"):
                    return False
            except redis.AuthenticationError:
                return False
            finally:
                node.close()
        return True

    wait_until(converged, 60, interval=0.5, what="the control plane to set the nodes' own users")
    # The replica logs in again, now as amr-replication: cut its link and watch it come back.
    for socket in sockets:
        node = redis.Redis(
            unix_socket_path=socket, username="amr-admin", password=own["amr-admin"], decode_responses=True
        )
        if node.info("replication")["role"] == "slave":
            node.execute_command("CLIENT", "KILL", "TYPE", "master")
            wait_until(lambda n=node: n.info("replication")["master_link_status"] == "up", 20, what="relink")
            client.set("after", "2")
            wait_until(lambda n=node: n.get("after") == "2", 10, what="replication after the relink")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=sockets[0], username="amr-admin", password=master).ping()


def test_a_tenant_can_neither_pause_the_nodes_nor_close_amrs_connections(service: AmrService) -> None:
    """CLIENT PAUSE would hold amr's probes too and make a healthy primary look dead: refused, as in
    Azure. CLIENT KILL works on the tenant's own clients only: amr's (the failover probes, the
    replication link) are never matched, so nothing is closed and no failover follows."""
    _create(service, "iso-pause", "NoCluster")
    tenant = _client(service, "iso-pause")
    for command in (("CLIENT", "PAUSE", 5000), ("CLIENT", "PAUSE", 5000, "WRITE"), ("CLIENT", "UNPAUSE")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            tenant.execute_command(*command)
    role = tenant.execute_command("ROLE")[0]
    ha_log = service.home / "logs" / "ha.log"
    before = len(ha_log.read_text())
    for _ in range(5):
        assert tenant.execute_command("CLIENT", "KILL", "USER", "amr-ha") == 0
        assert tenant.execute_command("CLIENT", "KILL", "TYPE", "replica") == 0
        tenant.set("k", "v")
    wait_until(lambda: tenant.execute_command("WAIT", 1, 1000) == 1, 20, what="the replica back in sync")
    assert tenant.execute_command("ROLE")[0] == role
    assert "promoted" not in ha_log.read_text()[before:]
