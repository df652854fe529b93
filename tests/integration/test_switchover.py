"""A planned switchover done on the engine behind amr's back, with real processes: the gateway follows
the new primary by itself (new connections reach it within a second, connections to the old one are
closed so clients reconnect), no acknowledged write is lost, and the control plane accepts the new
roles instead of switching them back."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.reconciler.loop import IDLE_INTERVAL
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.ha_load import Writer, admin_password, missing_writes


def _show(service: AmrService, cluster: str) -> Any:
    return service.amr_json("redisenterprise", "database", "show", "--cluster-name", cluster, "-g", "rg")


def _admin(service: AmrService, socket: str) -> redis.Redis:
    password = admin_password(service.home, socket)
    return redis.Redis(
        unix_socket_path=socket,
        username="amr-admin",
        password=password,
        socket_timeout=5,
        decode_responses=True,
    )


def _client(service: AmrService, port: int, key: str) -> redis.Redis:
    return redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=service.ca_file, socket_timeout=5,
        decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _route(service: AmrService, port: int) -> dict[str, Any]:
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    return dict(route)


def _role(service: AmrService, socket: str) -> str:
    return str(_admin(service, socket).execute_command("ROLE")[0])


def _tcp_port(r: redis.Redis) -> int:
    return int(r.info("server")["tcp_port"])


def new_connection_reaches(service: AmrService, port: int, key: str, node_port: int) -> bool:
    info = _client(service, port, key).info()
    return int(info["tcp_port"]) == node_port and info["role"] == "master"


@pytest.mark.parametrize("policy", ["NoCluster", "OSSCluster"])
def test_planned_switchover_is_followed_by_the_gateway_and_kept_by_the_control_plane(
    service: AmrService, policy: str
) -> None:
    name = f"sw{policy.lower()}"
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
    )  # fmt: skip
    port = _show(service, name)["properties"]["port"]
    key = service.primary_key(name)
    route = _route(service, port)
    old, new = route["candidates"]
    assert old == route["target"]
    old_port, new_port = _tcp_port(_admin(service, old)), _tcp_port(_admin(service, new))
    wait_until(
        lambda: _admin(service, new).info("replication").get("master_link_status") == "up",
        20,
        what="replica up",
    )
    assert _tcp_port(_client(service, port, key)) == old_port

    def new_connection_reaches_new_primary() -> bool:
        return new_connection_reaches(service, port, key, new_port)

    writer = Writer(_client(service, port, key))
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= 300, 20, what="writes before the switchover")
        before = len(writer.acked)
        started = time.monotonic()
        if policy == "NoCluster":
            _admin(service, old).execute_command("FAILOVER")
        else:
            _admin(service, new).execute_command("CLUSTER", "FAILOVER")

        # FAILOVER first waits for the replica to acknowledge every write (up to a second); the gateway's
        # time counts from the moment the engine has switched.
        wait_until(lambda: _role(service, new) == "master", 10, interval=0.005, what="the engine switches")
        switched = time.monotonic()
        wait_until(new_connection_reaches_new_primary, 1.0, interval=0.01, what="the gateway follows")
        followed = time.monotonic() - switched
        handover = switched - started
        wait_until(lambda: len(writer.acked) >= before + 300, 20, what="writes after the switchover")
    finally:
        writer.stop.set()
        thread.join(10)
    print(
        f"{policy}: engine switched {handover * 1000:.0f} ms after the command; "
        f"gateway followed in {followed * 1000:.0f} ms; longest write gap {writer.longest_gap(writer.ack_times[0], writer.ack_times[-1])[0] * 1000:.0f} ms; "
        f"{len(writer.acked)} writes acknowledged; retried errors: {sorted(set(writer.errors))}"
    )
    info = _admin(service, new).info("replication")
    assert info["role"] == "master" and info["connected_slaves"] == 1
    assert _role(service, old) == "slave"
    # The writer's connection to the old primary was closed, and it reconnected to the new one.
    assert _tcp_port(writer.client) == new_port
    audit = (service.home / "logs" / "connections.jsonl").read_text().splitlines()
    reasons = [json.loads(line).get("reason") for line in audit if f'"port":{port},' in line]
    assert "primary_changed" in reasons

    # Zero acknowledged writes lost: every one is on the new primary.
    assert missing_writes(_admin(service, new), writer.acked) == []

    # The control plane accepts the new roles: several reconciler ticks later nothing has moved back.
    if policy == "NoCluster":
        node = old.rsplit("/", 1)[1].removesuffix(".sock")
        conf = service.home / "nodes" / node.rsplit("-", 2)[0] / node / "valkey.conf"

        def conf_follows() -> bool:
            lines = conf.read_text().splitlines()
            return any(line.startswith("replicaof ") and line.endswith(f" {new_port}") for line in lines)

        wait_until(
            conf_follows, IDLE_INTERVAL * 3 + 5, what="valkey.conf of the old primary follows the new one"
        )

    def roles_kept() -> None:
        assert _role(service, new) == "master"
        assert _role(service, old) == "slave"

    service.wait_passes(3, meanwhile=roles_kept, interval=0.2)
    assert _show(service, name)["properties"]["provisioningState"] == "Succeeded"
    assert new_connection_reaches(service, port, key, new_port)

    # Actions of the control plane go to the primary of now: flush empties the database.
    service.amr(
        "redisenterprise", "database", "flush", "--cluster-name", name, "-g", "rg", "--yes", check=True
    )
    assert _admin(service, new).dbsize() == 0
