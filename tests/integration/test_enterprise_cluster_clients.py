"""An EnterpriseCluster endpoint answers like one Redis where client libraries look closely: QUIT,
INFO, pub/sub counts, sharded pub/sub across shards, client-side caching and MONITOR, each through
the real TLS endpoint of a four-shard database with real redis-py clients (and a single-shard
NoCluster database where the two must agree)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.integration.amr_service import (
    FOUR_SHARDS,
    AmrService,
    cache_client,
    enterprise_cluster,
    raw_connection,
    read_until,
    running_service,
)
from tests.integration.ha_load import admin_client, routes_of


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    return enterprise_cluster(service, "ec")


def _raw(service: AmrService, name: str) -> ssl.SSLSocket:
    """An authenticated raw TLS connection to a database's endpoint."""
    sock, key = raw_connection(service, name)
    sock.sendall(b"AUTH %s\r\n" % key)
    assert read_until(sock, b"\r\n") == b"+OK\r\n"
    return sock


def _read_to_eof(sock: Any) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# --- QUIT ----------------------------------------------------------------------------------------


def test_quit_is_answered_and_closes_the_connection(service: AmrService, ec: redis.Redis) -> None:
    client = cache_client(service, "ec", socket_timeout=5)
    assert client.quit() is True
    # Pipelined after commands for several shards: their replies, then +OK, then the end.
    keys = [f"quit:{i}" for i in range(8)]
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, k)
    pipe.execute_command("QUIT")
    assert pipe.execute() == [True] * 8 + [True]
    assert ec.mget(keys) == keys
    # On the wire, RESP and inline: nothing after QUIT runs.
    for quit_cmd in (b"*1\r\n$4\r\nQUIT\r\n", b"QUIT\r\n"):
        sock = _raw(service, "ec")
        sock.sendall(b"SET quit:a 1\r\nGET quit:0\r\n" + quit_cmd + b"SET quit:after 1\r\n")
        assert _read_to_eof(sock) == b"+OK\r\n$6\r\nquit:0\r\n+OK\r\n"
        sock.close()
    assert ec.exists("quit:after") == 0


# --- INFO ----------------------------------------------------------------------------------------


def _primaries(service: AmrService, client: redis.Redis) -> list[redis.Redis]:
    """Admin clients of the primaries behind an EnterpriseCluster endpoint, one per shard."""
    port = int(client.connection_pool.connection_kwargs["port"])
    nodes = [admin_client(service.home, n["socket"]) for n in routes_of(service.home, port)["nodes"]]
    return [n for n in nodes if n.info("replication")["role"] == "master"]


def test_info_shows_one_database_that_is_not_a_cluster(service: AmrService, ec: redis.Redis) -> None:
    ec.flushdb()
    keys = [f"info:{i}" for i in range(40)]
    ec.mset({k: "v" for k in keys})
    for k in keys[:10]:
        ec.expire(k, 1000)
    primaries = _primaries(service, ec)
    assert len(primaries) == 4 and all(p.info("cluster")["cluster_enabled"] == 1 for p in primaries)
    info = ec.info("everything")
    # What tools read to pick the cluster protocol says: not a cluster (redis-py's own test set-up
    # reads cluster_enabled).
    assert info["cluster_enabled"] == 0 and info["server_mode"] == "standalone"
    assert info["db0"]["keys"] == 40 and info["db0"]["expires"] == 10
    # What adds up across shards is summed (counters taken after the endpoint's INFO only grow).
    after = [p.info("everything") for p in primaries]
    assert sum(i["db0"]["keys"] for i in after) == 40
    assert info["total_commands_processed"] <= sum(i["total_commands_processed"] for i in after)
    assert info["total_commands_processed"] > max(i["total_commands_processed"] for i in after) // 2
    assert info["maxmemory"] == sum(i["maxmemory"] for i in after) > 0
    assert info["cmdstat_mset"]["calls"] == sum(
        i["cmdstat_mset"]["calls"] for i in after if "cmdstat_mset" in i
    )
    assert info["keyspace_hits"] <= sum(i["keyspace_hits"] for i in after)
    # One section, as a single node answers it.
    assert set(ec.info("cluster")) == {"cluster_enabled"} and ec.info("cluster")["cluster_enabled"] == 0
