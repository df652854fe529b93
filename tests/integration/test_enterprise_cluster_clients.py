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
