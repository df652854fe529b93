"""Unplanned failover with real processes: kill -9 of a database's primary under a steady write load
through its endpoint, with the control plane running and with it stopped.

Writes resume through the same endpoint (the `amr ha` coordinator promotes the replica, with
REPLICAOF NO ONE or CLUSTER FAILOVER TAKEOVER; the gateway follows by itself), the new primary holds every write the
client saw acknowledged except what asynchronous replication had not shipped when the primary died
(measured and printed), the killed node comes back as a replica of the new primary (its launcher
waits for the promotion instead of starting empty), and the history tells the failover."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.ha_load import (
    Writer,
    admin_client,
    endpoint_client,
    missing_writes,
    node_name,
    routes_of,
)

# What asynchronous replication may not have shipped when the primary died: the writes acknowledged
# in its last moments. Anything acknowledged earlier, or after the failover, must be there.
IN_FLIGHT_WINDOW = 0.25


def _database(service: AmrService, name: str, policy: str) -> tuple[int, str]:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--clustering-policy", policy, "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    cache = service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
    assert cache["properties"]["highAvailability"] == "Enabled"
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    keys = service.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", name, "-g", "rg")
    return int(show["properties"]["port"]), str(keys["primaryKey"])


def _events(service: AmrService, name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = service.amr_json(
        "redisenterprise", "database", "events", "--cluster-name", name, "-g", "rg"
    )
    return events


def _in_sync(service: AmrService, socket: str) -> bool:
    info = admin_client(service.home, socket).info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


@pytest.mark.parametrize("control_plane", ["running", "stopped"])
@pytest.mark.parametrize("policy", ["NoCluster", "OSSCluster"])
def test_kill_9_of_the_primary_under_load(service: AmrService, policy: str, control_plane: str) -> None:
    name = f"kill{policy[:3].lower()}{control_plane[:4]}"
    port, key = _database(service, name, policy)
    route = routes_of(service.home, port)
    primary, replica = route["candidates"]
    assert primary == route["target"]
    wait_until(lambda: _in_sync(service, replica), 20, what="the replica in sync")
    supervisor = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)

    writer = Writer(endpoint_client(service.ca_file, port, key)).start()
    try:
        wait_until(
            lambda: len(writer.acked) >= 300, 20, what=f"writes before the kill ({writer.errors[-3:]})"
        )
        if control_plane == "stopped":
            supervisor.call_sync("stopProcess", "api", True)
        victim = service.node_pids()[node_name(primary)]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: writer.acked_after(killed) >= 300, 30, what="writes after the kill")
    finally:
        writer.finish()
    gap = writer.gap_after(killed)

    # The replica is the primary now, and the killed node came back as its replica.
    new = admin_client(service.home, replica)
    assert new.info("replication")["role"] == "master"
    wait_until(lambda: _in_sync(service, primary), 30, what="the killed node back as a replica")
    assert new.info("replication")["connected_slaves"] == 1

    missing = missing_writes(new, writer.acked)
    last_before_kill = max((i for i, t in zip(writer.acked, writer.ack_times, strict=True) if t <= killed))
    in_flight = [
        i
        for i, t in zip(writer.acked, writer.ack_times, strict=True)
        if killed - IN_FLIGHT_WINDOW < t <= killed
    ]
    print(
        f"{policy}, control plane {control_plane}: write gap {gap:.2f} s after kill -9 of the primary; "
        f"{len(writer.acked)} writes acknowledged, {len(missing)} missing on the new primary "
        f"(last acknowledged before the kill: k{last_before_kill}); retried errors: {sorted(set(writer.errors))}"
    )
    assert set(missing) <= set(in_flight), f"lost writes beyond replication lag: {missing}"
    assert gap < 10

    if control_plane == "stopped":
        supervisor.call_sync("startProcess", "api", True)

    def failover_event() -> list[dict[str, Any]]:
        return [e for e in _events(service, name) if e["properties"]["kind"] == "failover"]

    (event,) = wait_until(failover_event, 30, interval=0.5, what="the failover in the history")
    props = event["properties"]
    assert (props["oldPrimary"], props["newPrimary"]) == (node_name(primary), node_name(replica))
    assert "went down" in props["cause"]
    # The database reports healthy again, and the endpoint serves the new primary.
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    assert show["properties"]["provisioningState"] == "Succeeded"
    assert int(endpoint_client(service.ca_file, port, key).info("server")["tcp_port"]) == int(
        new.info("server")["tcp_port"]
    )
    service.amr("redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True)


def test_enabling_high_availability_while_the_node_does_not_serve_is_a_conflict(service: AmrService) -> None:
    """The node cannot start (its RDB file is corrupt): enabling HA would add a replica with no primary
    to copy, so it is refused with 409 and nothing changes; once the node serves again it works."""
    name = "hadown"
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--clustering-policy", "NoCluster", "--high-availability", "Disabled",
        "--access-keys-authentication", "Enabled", "--persistence", "rdb-enabled=true", "rdb-frequency=1h",
    )  # fmt: skip
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    port = int(show["properties"]["port"])
    (socket,) = [routes_of(service.home, port)["target"]]
    admin = admin_client(service.home, socket)
    for i in range(100):
        admin.set(f"k{i}", str(i))
    admin.execute_command("SAVE")
    node = node_name(socket)
    (snapshot,) = service.home.glob(f"nodes/*/{node}/dump.rdb")
    good = snapshot.read_bytes()
    supervisor = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)
    supervisor.call_sync("stopProcess", f"node-{node}", True)
    snapshot.write_bytes(b"REDIS0011 this is not an RDB file")  # every start now fails

    before = service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
    result = service.amr(
        "redisenterprise", "update", "--cluster-name", name, "-g", "rg", "--high-availability", "Enabled"
    )
    assert result.returncode != 0
    assert "(Conflict)" in result.stderr and node in result.stderr and "does not serve" in result.stderr
    after = service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
    assert after["properties"]["highAvailability"] == "Disabled"
    assert after == before
    assert len(routes_of(service.home, port)["candidates"]) <= 1  # no replica was added

    snapshot.write_bytes(good)  # the node can start again: amr brings it back with its data
    wait_until(lambda: admin_client(service.home, socket).dbsize() == 100, 30, what="the node back")
    service.amr(
        "redisenterprise", "update", "--cluster-name", name, "-g", "rg", "--high-availability", "Enabled",
        check=True,
    )  # fmt: skip
    (_, replica) = routes_of(service.home, port)["candidates"]
    wait_until(lambda: _in_sync(service, replica), 30, what="the new replica in sync")
    assert admin_client(service.home, replica).dbsize() == 100
    service.amr("redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True)


@pytest.mark.parametrize("policy", ["NoCluster", "OSSCluster"])
def test_kills_in_a_row_lose_nothing(service: AmrService, policy: str) -> None:
    """Each primary in turn is killed once the database has healed from the kill before: the
    second kill meets configs the control plane rendered anew after the first failover, and a replica that was fully resynced moments ago."""
    name = f"again{policy[:3].lower()}"
    port, key = _database(service, name, policy)
    sockets = list(routes_of(service.home, port)["candidates"])
    wait_until(lambda: _in_sync(service, sockets[1]), 20, what="the replica in sync")
    writer = Writer(endpoint_client(service.ca_file, port, key)).start()
    kills = []
    try:
        wait_until(
            lambda: len(writer.acked) >= 200, 20, what=f"writes before the kills ({writer.errors[-3:]})"
        )
        for _ in range(3):
            (primary,) = [
                s for s in sockets if admin_client(service.home, s).info("replication")["role"] == "master"
            ]
            killed = time.monotonic()
            kills.append(writer.acked[-1])
            os.kill(service.node_pids()[node_name(primary)], signal.SIGKILL)
            wait_until(lambda k=killed: writer.acked_after(k) >= 200, 30, what="writes after the kill")
            wait_until(lambda p=primary: _in_sync(service, p), 30, what="the killed node back as a replica")
    finally:
        writer.finish()
    (primary,) = [s for s in sockets if admin_client(service.home, s).info("replication")["role"] == "master"]
    missing = missing_writes(admin_client(service.home, primary), writer.acked)
    print(
        f"{policy}: 3 kills in a row after k{kills}; {len(writer.acked)} writes acknowledged, {len(missing)} missing"
    )
    assert len(missing) <= 3 * 5, missing  # at most a few in flight per kill, never a whole stretch
    service.amr("redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True)
