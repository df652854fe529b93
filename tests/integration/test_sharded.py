"""A multi-shard OSSCluster database with real processes: four shards (engine.max_shards_per_database
allows them), slots spread evenly, a replica per shard, redis-py RedisCluster over TLS through the
gateway's per-node ports, and kill -9 of one shard's primary survived with the client's default retries."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from tests.integration.amr_service import FOUR_SHARDS, AmrService, running_service, wait_until
from tests.integration.ha_load import admin_client

KEYS = 100_000


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


def _write(client: RedisCluster, keys: range) -> None:
    pipe = client.pipeline()
    for i in keys:
        pipe.set(f"key:{i}", str(i))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def _missing(client: RedisCluster, keys: range) -> list[int]:
    missing: list[int] = []
    batch = list(keys)
    for start in range(0, len(batch), 5000):
        chunk = batch[start : start + 5000]
        pipe = client.pipeline()
        for i in chunk:
            pipe.get(f"key:{i}")
        missing += [i for i, v in zip(chunk, pipe.execute(), strict=True) if v != str(i)]
    return missing


def test_a_four_shard_oss_cluster_serves_a_cluster_client_and_survives_a_shard_failover(
    service: AmrService,
) -> None:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "big", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B20", "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "big", "-g", "rg")
    props = db["properties"]
    assert props["shardCount"] == 4
    assert "runs 4" in props["statusMessage"]
    key = service.primary_key("big")
    client = RedisCluster(
        host="localhost",
        port=props["port"],
        password=key,
        ssl=True,
        ssl_ca_certs=service.ca_file,
        decode_responses=True,
    )  # fmt: skip  redis-py's default retries: nothing tuned for amr
    slots = client.execute_command("CLUSTER SLOTS")
    assert sorted(slots) == [(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]
    gateway_ports = {entry["primary"][1] for entry in slots.values()}
    # Announced at the public address (gateway.public_host "localhost" is 127.0.0.1), never the
    # nodes' internal one.
    assert all(host == "127.0.0.1" for host, _ in (e["primary"] for e in slots.values()))
    assert len(gateway_ports) == 4  # every shard's primary behind its own gateway port

    _write(client, range(KEYS))
    assert _missing(client, range(KEYS)) == []

    # kill -9 of the primary of the shard that holds key:0; amr ha promotes that shard's replica.
    nodes = service.node_pids()
    node_port = client.get_node_from_key("key:0").port
    run = service.home / "run"
    victim = next(
        name for name in nodes
        if int(admin_client(service.home, str(run / f"{name}.sock")).info("server")["tcp_port"]) == node_port
    )  # fmt: skip
    replica = next(n for n in nodes if n != victim and n.rsplit("-", 1)[0] == victim.rsplit("-", 1)[0])
    wait_until(
        lambda: (
            admin_client(service.home, str(run / f"{replica}.sock")).info("replication")["master_link_status"]
            == "up"
        ),
        30,
        what="the shard's replica in sync",
    )
    os.kill(nodes[victim], signal.SIGKILL)
    # The cluster client refreshes its slot map on connection errors and MOVED and retries with
    # its default backoff; amr ha promotes the replica ``ha.gone_after_ms`` after the process is
    # gone, well within those retries, so no command fails.
    for i in range(KEYS, KEYS + 1000):
        client.set(f"key:{i}", str(i))
    assert _missing(client, range(KEYS + 1000)) == []
    new_slots = client.execute_command("CLUSTER SLOTS")
    assert sorted(new_slots) == sorted(slots)
    assert admin_client(service.home, str(run / f"{replica}.sock")).info("replication")["role"] == "master"
    wait_until(
        lambda: (
            admin_client(service.home, str(run / f"{victim}.sock"))
            .info("replication")
            .get("master_link_status")
            == "up"
        ),
        30,
        what="the killed primary back as the replica of its shard",
    )
