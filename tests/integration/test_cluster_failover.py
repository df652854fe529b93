"""Automatic failover of a clustered database (OSSCluster, EnterpriseCluster) with high availability,
with real processes: the primary's program is stopped through the supervisor (so nothing restarts it
at once), the `amr ha` coordinator promotes the replica (a one-shard cluster never would by itself),
the endpoint takes writes again, and the old primary, started again, rejoins as a replica of the new
one. The same with the control plane (the `api` program) stopped first, and with a primary that hangs
(SIGSTOP) instead of exiting."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.ha_load import admin_password

# The coordinator acts ha.down_after_ms (1 s) after the primary's last answer; a primary stopping
# with SIGTERM first waits up to 1 s for its replica to acknowledge; then the gateway follows the new
# primary within a poll. Generous for a loaded 2-core machine.
FAILOVER_DEADLINE = 8.0


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    svc = AmrService()
    # Five HA databases of two nodes each stay until the end: room for them and a few busy ports.
    first = int(svc.env["AMR_GATEWAY_NODE_PORT_RANGE_START"])
    svc.env["AMR_GATEWAY_NODE_PORT_RANGE_END"] = str(first + 15)
    svc.start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


def _supervisor(service: AmrService) -> SupervisorClient:
    return SupervisorClient(service.home / "supervisor" / "supervisor.sock")


def _admin(service: AmrService, socket: str) -> redis.Redis:
    password = admin_password(service.home, socket)
    return redis.Redis(
        unix_socket_path=socket, username="amr-admin", password=password, socket_timeout=2,
        decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _client(service: AmrService, port: int, key: str) -> redis.Redis:
    return redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=service.ca_file, socket_timeout=2,
        socket_connect_timeout=2, decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _myself(service: AmrService, socket: str) -> dict[str, Any]:
    """This node's line of CLUSTER NODES: its id, flags, primary and slot count."""
    for line in str(_admin(service, socket).execute_command("CLUSTER", "NODES")).splitlines():
        parts = line.split()
        if "myself" in parts[2].split(","):
            slots = 0
            for r in parts[8:]:
                if not r.startswith("["):
                    low, _, high = r.partition("-")
                    slots += int(high or low) - int(low) + 1
            return {"id": parts[0], "flags": parts[2].split(","), "master": parts[3], "slots": slots}
    raise AssertionError("no myself line in CLUSTER NODES")


def _holds_all_slots(service: AmrService, socket: str) -> bool:
    me = _myself(service, socket)
    return "master" in me["flags"] and me["slots"] == 16384


def _replication(service: AmrService, socket: str) -> dict[str, Any]:
    return dict(_admin(service, socket).info("replication"))


def _node_name(socket: str) -> str:
    return socket.rsplit("/", 1)[1].removesuffix(".sock")


def _watched(service: AmrService, uid_prefix: str) -> bool:
    path = service.home / "ha" / "watch.json"
    if not path.exists():
        return False
    watch = json.loads(path.read_text())
    return any(
        n["name"].startswith(uid_prefix) for d in watch["databases"] for s in d["shards"] for n in s["nodes"]
    )


@pytest.mark.parametrize(
    ("policy", "api_down"),
    [("OSSCluster", False), ("EnterpriseCluster", False), ("OSSCluster", True), ("EnterpriseCluster", True)],
)
def test_a_stopped_primary_fails_over_to_its_replica(
    service: AmrService, policy: str, api_down: bool
) -> None:
    name = f"fo{policy[:3].lower()}{'noapi' if api_down else 'api'}"
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
        "--high-availability", "Enabled",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    port = db["properties"]["port"]
    key = service.primary_key(name)
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    primary, replica = route["candidates"]
    assert primary == route["target"]
    primary_name, replica_name = _node_name(primary), _node_name(replica)
    primary_port = int(_admin(service, primary).info("server")["tcp_port"])
    replica_port = int(_admin(service, replica).info("server")["tcp_port"])
    wait_until(lambda: _watched(service, primary_name), 10, what="the database in the HA watch file")
    wait_until(
        lambda: _replication(service, replica).get("master_link_status") == "up", 20, what="replica in sync"
    )

    client = _client(service, port, key)
    wait_until(client.ping, 10, what="the endpoint answers")
    for i in range(200):
        client.set(f"k{i}", str(i))
    supervisor = _supervisor(service)
    try:
        if api_down:
            supervisor.call_sync("stopProcess", "api", True)
            assert supervisor.call_sync("getProcessInfo", "api")["statename"] == "STOPPED"

        stopped = time.monotonic()
        supervisor.call_sync("stopProcess", f"node-{primary_name}", True)

        wait_until(
            lambda: _holds_all_slots(service, replica), FAILOVER_DEADLINE, interval=0.01,
            what="the replica holds the slots",
        )  # fmt: skip
        promoted = time.monotonic() - stopped

        def writes() -> bool:
            try:
                return bool(client.set("after", "failover"))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                return False

        wait_until(writes, FAILOVER_DEADLINE, interval=0.01, what="a write through the endpoint")
        wrote = time.monotonic() - stopped
        print(
            f"{policy}, api {'stopped' if api_down else 'running'}: replica promoted {promoted:.2f} s "
            f"after the primary's program was stopped; first write through the endpoint after {wrote:.2f} s"
        )
        assert int(client.info("server")["tcp_port"]) == replica_port
        # Every write acknowledged before the stop is on the new primary.
        pipe = client.pipeline(transaction=False)  # one GET per key: in a cluster they span slots
        for i in range(200):
            pipe.get(f"k{i}")
        assert pipe.execute() == [str(i) for i in range(200)]
        promotion = (
            f"promoted node {replica_name} of database {db['id']} shard 0 after primary {primary_name}"
        )
        # The supervisor copies the coordinator's output to ha.log a moment after it is written.
        wait_until(lambda: promotion in (service.home / "logs" / "ha.log").read_text(), 5, what="ha.log")

        # The old primary, started again, rejoins as a replica of the new one (with the API running,
        # the control plane may already have started it: starting a started program is a no-op).
        program = f"node-{primary_name}"
        if supervisor.call_sync("getProcessInfo", program)["statename"] in ("STOPPED", "EXITED", "FATAL"):
            supervisor.call_sync("startProcess", program, False)
        new_primary_id = _myself(service, replica)["id"]

        def rejoined() -> bool:
            info = _replication(service, primary)
            return (
                info.get("role") == "slave"
                and int(info.get("master_port", 0)) == replica_port
                and info.get("master_link_status") == "up"
                and _myself(service, primary)["master"] == new_primary_id
            )

        wait_until(rejoined, 30, interval=0.05, what="the old primary rejoins as a replica")

        def replicated() -> bool:
            pipe = _admin(service, primary).pipeline(transaction=False)
            pipe.execute_command("READONLY")  # a cluster replica serves reads on this connection only then
            pipe.get("after")
            return bool(pipe.execute()[1] == "failover")

        # Replication is asynchronous: the write after the failover reaches the rejoined node shortly.
        wait_until(replicated, 10, what="the write after the failover on the rejoined node")
        assert _holds_all_slots(service, replica)
        assert int(_replication(service, replica)["connected_slaves"]) == 1
        assert int(_admin(service, primary).info("server")["tcp_port"]) == primary_port
    finally:
        if api_down:
            supervisor.call_sync("startProcess", "api", True)
    # The API is back for the next case. The database stays until the module's teardown: deleting
    # it would test the gateway's removal of HA routes, which is not this test's subject.
    wait_until(lambda: service.amr("group", "show", "-n", "rg").returncode == 0, 30, what="the API is back")


def test_a_hung_primary_fails_over_and_rejoins_when_it_resumes(service: AmrService) -> None:
    """A primary that stops answering without exiting (SIGSTOP): the supervisor sees it running, the
    coordinator's probes time out, and it promotes the replica; resumed, the old primary finds a newer
    primary holding its slots and becomes its replica."""
    name = "fohung"
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", "OSSCluster",
    )  # fmt: skip
    port = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")[
        "properties"
    ]["port"]
    key = service.primary_key(name)
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    primary, replica = route["candidates"]
    replica_port = int(_admin(service, replica).info("server")["tcp_port"])
    wait_until(lambda: _watched(service, _node_name(primary)), 10, what="the database in the HA watch file")
    wait_until(
        lambda: _replication(service, replica).get("master_link_status") == "up", 20, what="replica in sync"
    )
    client = _client(service, port, key)
    wait_until(client.ping, 10, what="the endpoint answers")
    client.set("before", "hang")
    pid = int(_supervisor(service).call_sync("getProcessInfo", f"node-{_node_name(primary)}")["pid"])
    stopped = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(
            lambda: _holds_all_slots(service, replica), FAILOVER_DEADLINE, interval=0.01,
            what="the replica holds the slots",
        )  # fmt: skip
        promoted = time.monotonic() - stopped

        def writes() -> bool:
            try:
                return bool(client.set("after", "hang"))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                return False

        wait_until(writes, FAILOVER_DEADLINE, interval=0.01, what="a write through the endpoint")
        print(
            f"hung primary: replica promoted {promoted:.2f} s after SIGSTOP; "
            f"first write through the endpoint after {time.monotonic() - stopped:.2f} s"
        )
        assert client.get("before") == "hang"
        assert _supervisor(service).call_sync("getProcessInfo", f"node-{_node_name(primary)}")["pid"] == pid
    finally:
        os.kill(pid, signal.SIGCONT)

    def rejoined() -> bool:
        info = _replication(service, primary)
        return (
            info.get("role") == "slave"
            and int(info.get("master_port", 0)) == replica_port
            and info.get("master_link_status") == "up"
        )

    wait_until(rejoined, 30, interval=0.05, what="the resumed primary rejoins as a replica")
    assert _holds_all_slots(service, replica)
