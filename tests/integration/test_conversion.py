"""Converting a NoCluster database to a clustered policy with real processes, data kept: an HA
Balanced_B1 database to EnterpriseCluster (same endpoint, CLUSTER commands blocked, `amr ha`
watches it as a cluster and never took its planned restarts for failures), a Balanced_B3 database without HA to OSSCluster (two shards, even slot ranges, a cluster
client reads every key); a converted database never changes its policy again."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from amr.logic.ha.watch import parse_ha_watch
from amr.logic.keyspace.slots import plan_slot_ranges
from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.ha_load import Writer, admin_password, endpoint_client, missing_writes

API = "?api-version=2025-07-01"
KEYS = 20_000


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    svc = AmrService({"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


def _create(service: AmrService, name: str, sku: str, ha: str) -> tuple[int, str, str]:
    """A NoCluster database: its port, a key and its uid (from the node sockets of its route)."""
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--high-availability", ha, "--access-keys-authentication", "Enabled", "--clustering-policy", "NoCluster",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    assert db["properties"]["clusteringPolicy"] == "NoCluster"
    key = service.primary_key(name)
    port = int(db["properties"]["port"])
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    uid = route["target"].rsplit("/", 1)[1].removesuffix(".sock").rsplit("-", 2)[0]
    return port, key, uid


def _cluster_client(service: AmrService, port: int, key: str) -> RedisCluster:
    return RedisCluster(
        host="localhost",
        port=port,
        password=key,
        ssl=True,
        ssl_ca_certs=service.ca_file,
        decode_responses=True,
    )


def _client(service: AmrService, port: int, key: str) -> redis.Redis:
    return redis.Redis(
        host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file,
        decode_responses=True, socket_timeout=10,
    )  # fmt: skip


def _load(client: Any) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.set(f"pre{i}", str(i))
    pipe.execute()


def _missing(client: Any) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.get(f"pre{i}")
    return [i for i, v in enumerate(pipe.execute()) if v != str(i)]


def _database(service: AmrService, name: str) -> dict[str, Any]:
    response = service.http().get(service.cluster_path("rg", name) + "/databases/default" + API)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _convert(service: AmrService, name: str, policy: str) -> dict[str, Any]:
    """PATCH the policy, see the database Updating, and wait for Succeeded."""
    path = service.cluster_path("rg", name) + "/databases/default" + API
    response = service.http().patch(path, json={"properties": {"clusteringPolicy": policy}})
    assert response.status_code == 202, response.text
    assert response.json()["properties"]["provisioningState"] == "Updating"
    wait_until(
        lambda: _database(service, name)["properties"]["provisioningState"] != "Updating",
        90,
        interval=0.2,
        what=f"converting {name} to {policy}",
    )
    db = _database(service, name)
    assert db["properties"]["provisioningState"] == "Succeeded", db
    operation = service.http().get(response.headers["Azure-AsyncOperation"])
    assert operation.json()["status"] == "Succeeded", operation.text
    return db


def _admin(service: AmrService, uid: str, node: str) -> redis.Redis:
    return redis.Redis(
        unix_socket_path=str(service.home / "run" / f"{uid}-{node}.sock"), username="amr-admin",
        password=admin_password(service.home, f"{uid}-{node}"), socket_timeout=5,
        decode_responses=True,
    )  # fmt: skip


def _replica_synced(service: AmrService, uid: str, acked: list[int]) -> bool:
    replica = _admin(service, uid, "0-1")
    try:
        info = replica.info("replication")
        return (
            info["role"] == "slave"
            and info["master_link_status"] == "up"
            and replica.dbsize() >= KEYS + len(acked)
        )
    finally:
        replica.close()


def _watched_as(service: AmrService, uid: str) -> str:
    """How `amr ha` watches the database: "standalone", "cluster", or "" (not at all)."""
    watch = parse_ha_watch((service.home / "ha" / "watch.json").read_text())
    for db in watch.databases:
        if db.uid == uid:
            return "cluster" if db.cluster else "standalone"
    return ""


def test_ha_nocluster_database_converts_to_enterprise_cluster_with_every_key(service: AmrService) -> None:
    port, key, uid = _create(service, "conv-ec", "Balanced_B1", "Enabled")
    client = _client(service, port, key)
    _load(client)
    wait_until(lambda: _watched_as(service, uid) == "standalone", 30, what="amr ha watching the database")
    ha_log = service.home / "logs" / "ha.log"
    before = len(ha_log.read_text())

    # A client keeps writing through the conversion: its connection closes when the primary restarts
    # (it reconnects and retries), and no write it had acknowledged is lost.
    writer = Writer(endpoint_client(service.ca_file, port, key)).start()
    wait_until(lambda: len(writer.acked) > 50, 10, what="writes before the conversion")
    try:
        db = _convert(service, "conv-ec", "EnterpriseCluster")
        acked = len(writer.acked)
        wait_until(lambda: len(writer.acked) > acked + 50, 10, what="writes after the conversion")
    finally:
        writer.finish()
    assert db["properties"]["clusteringPolicy"] == "EnterpriseCluster"
    assert db["properties"]["shardCount"] == 1

    after = _client(service, port, key)  # the same port, a plain client
    # (+1: a write that was applied while its connection closed, never acknowledged)
    assert after.dbsize() - KEYS - len(writer.acked) in (0, 1)
    assert _missing(after) == []
    assert missing_writes(after, writer.acked) == []
    with pytest.raises(redis.ResponseError):
        after.execute_command("CLUSTER", "SLOTS")
    assert after.set("new", "write") and after.get("new") == "write"
    assert _watched_as(service, uid) == "cluster"
    # The primary's planned restart into cluster mode was never taken for a failure.
    assert "promote" not in ha_log.read_text()[before:]
    # Both nodes run in cluster mode; the replica was recreated empty and full-synced every key.
    for node in ("0-0", "0-1"):
        admin = _admin(service, uid, node)
        assert admin.info("cluster")["cluster_enabled"] == 1
        admin.close()
    wait_until(
        lambda: _replica_synced(service, uid, writer.acked),
        30,
        what="the replica following the converted primary",
    )
    # The clustered HA path watches it instead.
    watch = json.loads((service.home / "ha" / "watch.json").read_text())
    assert uid in [d["uid"] for d in watch["databases"]]
    client.close()
    after.close()


def test_nocluster_database_converts_to_oss_cluster_on_the_skus_shards(service: AmrService) -> None:
    port, key, _ = _create(service, "conv-oss", "Balanced_B3", "Disabled")
    client = _client(service, port, key)
    _load(client)

    # Through the CLI this time: it waits for the operation.
    shown = service.amr_json(
        "redisenterprise", "database", "update", "--cluster-name", "conv-oss", "-g", "rg",
        "--clustering-policy", "OSSCluster",
    )  # fmt: skip
    assert shown["properties"]["provisioningState"] == "Succeeded"
    db = _database(service, "conv-oss")
    assert db["properties"]["clusteringPolicy"] == "OSSCluster"
    assert db["properties"]["shardCount"] == 2 and "statusMessage" not in db["properties"]

    cluster = _cluster_client(service, port, key)
    assert _missing(cluster) == []
    slots = sorted((int(s[0]), int(s[1])) for s in cluster.execute_command("CLUSTER SLOTS"))
    assert slots == plan_slot_ranges(2)

    # A clustered database never changes its policy again, and the refusal changes nothing.
    path = service.cluster_path("rg", "conv-oss") + "/databases/default" + API
    for policy in ("NoCluster", "EnterpriseCluster"):
        response = service.http().patch(path, json={"properties": {"clusteringPolicy": policy}})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["target"] == "properties.clusteringPolicy"
    assert _database(service, "conv-oss") == db
    assert cluster.get("pre0") == "0"
    cluster.close()
    client.close()


def test_aof_database_converts_from_its_aof_without_a_snapshot(service: AmrService) -> None:
    port, key, uid = _create(service, "conv-aof", "Balanced_B0", "Disabled")
    service.amr_json(
        "redisenterprise", "database", "update", "--cluster-name", "conv-aof", "-g", "rg",
        "--persistence", "aof-enabled=true", "aof-frequency=1s",
    )  # fmt: skip
    client = _client(service, port, key)
    _load(client)
    writer = Writer(endpoint_client(service.ca_file, port, key)).start()
    wait_until(lambda: len(writer.acked) > 50, 10, what="writes before the conversion")
    try:
        _convert(service, "conv-aof", "EnterpriseCluster")
        acked = len(writer.acked)
        wait_until(lambda: len(writer.acked) > acked + 50, 10, what="writes after the conversion")
    finally:
        writer.finish()

    after = _client(service, port, key)
    assert _missing(after) == [] and missing_writes(after, writer.acked) == []
    admin = _admin(service, uid, "0-0")
    assert admin.info("cluster")["cluster_enabled"] == 1 and admin.info("persistence")["aof_enabled"] == 1
    admin.close()
    # The data came back from the AOF: no snapshot was taken.
    node_dir = service.home / "nodes" / uid / f"{uid}-0-0"
    assert (node_dir / "appendonlydir").is_dir() and not (node_dir / "dump.rdb").exists()
    client.close()
    after.close()


def _api_pid(service: AmrService) -> int:
    sock = service.home / "supervisor" / "supervisor.sock"
    info = SupervisorClient(sock, timeout=5).call_sync("getProcessInfo", "api")
    return int(info["pid"]) if info["statename"] == "RUNNING" else 0


def _cluster_enabled(service: AmrService, uid: str, node: str) -> bool:
    admin = _admin(service, uid, node)
    try:
        return bool(admin.info("cluster")["cluster_enabled"] == 1)
    finally:
        admin.close()


def test_a_control_plane_killed_mid_conversion_carries_on_with_every_key(service: AmrService) -> None:
    port, key, uid = _create(service, "conv-crash", "Balanced_B1", "Enabled")
    client = _client(service, port, key)
    _load(client)
    path = service.cluster_path("rg", "conv-crash") + "/databases/default" + API
    response = service.http().patch(path, json={"properties": {"clusteringPolicy": "OSSCluster"}})
    assert response.status_code == 202, response.text

    # Killed as soon as the primary runs clustered: before, during or after the replica's turn.
    wait_until(lambda: _cluster_enabled(service, uid, "0-0"), 30, interval=0.01, what="the primary clustered")
    old_api = _api_pid(service)
    os.kill(old_api, signal.SIGKILL)
    wait_until(lambda: _api_pid(service) not in (0, old_api), 60, interval=0.2, what="the API restarted")

    wait_until(
        lambda: _database(service, "conv-crash")["properties"]["provisioningState"] == "Succeeded",
        90,
        interval=0.2,
        what="the conversion to finish after the restart",
    )
    assert _cluster_enabled(service, uid, "0-1")
    wait_until(lambda: _replica_synced(service, uid, []), 30, what="the replica following the primary")
    cluster = _cluster_client(service, port, key)
    assert _missing(cluster) == []
    assert sorted((int(s[0]), int(s[1])) for s in cluster.execute_command("CLUSTER SLOTS")) == [(0, 16383)]
    cluster.close()
    client.close()
