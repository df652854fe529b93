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
from redis.cache import CacheConfig, TrackingMode
from redis.connection import CacheProxyConnection

from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.resp.frames import render_command
from tests.integration.amr_service import (
    FOUR_SHARDS,
    AmrService,
    cache_client,
    create_cache,
    enterprise_cluster,
    raw_connection,
    read_until,
    running_service,
    wait_until,
)
from tests.integration.ha_load import admin_client, routes_of


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    return enterprise_cluster(service, "ec")


@pytest.fixture(scope="module")
def one(service: AmrService) -> redis.Redis:
    """A NoCluster database: one node, the behaviour the EnterpriseCluster endpoint must match."""
    return create_cache(service, "one", "Balanced_B1", "NoCluster")


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


# --- pub/sub -------------------------------------------------------------------------------------


def _subscribed(pubsub: Any, kind: str, count: int | None = None) -> dict[str, Any]:
    """The next confirmation of ``kind`` on ``pubsub`` (and its count, when given)."""
    message = wait_until(lambda: pubsub.get_message(timeout=0.5), 10, what=kind)
    assert message["type"] == kind, message
    if count is not None:
        assert message["data"] == count, message
    return dict(message)


def _shard_of(key: str) -> int:
    """Which of four shards serves ``key`` (each serves a quarter of the slots, in order)."""
    return choose_key_slot(key.encode()) * 4 // 16384


def test_publish_and_pubsub_count_every_subscriber_of_the_database(
    service: AmrService, ec: redis.Redis
) -> None:
    subscribers = [cache_client(service, "ec").pubsub() for _ in range(6)]
    for p in subscribers[:5]:
        p.subscribe("news")
        _subscribed(p, "subscribe", 1)
    subscribers[5].psubscribe("ne*")
    _subscribed(subscribers[5], "psubscribe", 1)
    # Six receivers: five on the channel, one by pattern; each gets the message once.
    assert ec.publish("news", "hello") == 6
    for p in subscribers:
        message = wait_until(lambda p=p: p.get_message(timeout=0.5), 10, what="the message")
        assert message["data"] == "hello"
        assert p.get_message(timeout=0.2) is None  # delivered once, not once per shard
    assert ec.pubsub_numsub("news", "other") == [("news", 5), ("other", 0)]
    assert ec.pubsub_numpat() == 1
    assert "news" in ec.pubsub_channels() and ec.pubsub_channels("n*") == ["news"]
    # A pipeline of publishes counts the same.
    pipe = ec.pipeline(transaction=False)
    for i in range(10):
        pipe.publish("news", i)
    assert pipe.execute() == [6] * 10
    for p in subscribers:
        p.close()
    wait_until(lambda: ec.publish("news", "gone") == 0, 10, what="unsubscribed on close")


def test_sharded_subscriptions_across_shards_on_one_connection(service: AmrService, ec: redis.Redis) -> None:
    channels = [f"sch{i}" for i in range(40)]
    by_shard: dict[int, str] = {}
    for ch in channels:
        by_shard.setdefault(_shard_of(ch), ch)
    assert len(by_shard) == 4
    picked = [by_shard[s] for s in range(4)]
    pubsub = cache_client(service, "ec").pubsub()
    for n, ch in enumerate(picked, 1):
        pubsub.ssubscribe(ch)
        # The count is the connection's, over every shard (each node counts only its own).
        assert _subscribed(pubsub, "ssubscribe", n)["channel"] == ch
    assert ec.pubsub_shardnumsub(*picked) == [(ch, 1) for ch in picked]
    assert sorted(ec.pubsub_shardchannels()) == sorted(picked)
    for ch in picked:
        assert ec.spublish(ch, f"to {ch}") == 1
        message = wait_until(lambda: pubsub.get_sharded_message(timeout=0.5), 10, what=ch)
        assert message["channel"] == ch and message["data"] == f"to {ch}"
    # Unsubscribing one, then all: the counts go down to 0 and nothing leaks (no MOVED).
    pubsub.sunsubscribe(picked[0])
    assert _subscribed(pubsub, "sunsubscribe", 3)["channel"] == picked[0]
    pubsub.sunsubscribe()
    counts = sorted(_subscribed(pubsub, "sunsubscribe")["data"] for _ in range(3))
    assert counts == [0, 1, 2]
    assert ec.pubsub_shardnumsub(*picked) == [(ch, 0) for ch in picked]
    pubsub.close()
    # On the wire: channels of several slots in one SSUBSCRIBE are refused as the engine refuses
    # them, and no reply names an internal node.
    sock = _raw(service, "ec")
    sock.sendall(b"SSUBSCRIBE %s %s\r\nSSUBSCRIBE %s\r\nSSUBSCRIBE %s\r\n" % (
        picked[0].encode(), picked[1].encode(), picked[2].encode(), picked[3].encode()))  # fmt: skip
    got = read_until(sock, b":2\r\n")
    assert got.startswith(b"-CROSSSLOT") and b"MOVED" not in got and b":1\r\n" in got
    sock.close()


def test_subscription_replies_keep_the_order_of_the_commands_across_shards(
    service: AmrService, ec: redis.Redis, one: redis.Redis
) -> None:
    # The replies to a pipeline of (un)subscriptions come from several nodes on EnterpriseCluster;
    # they must reach the client in the order of its commands, with the counts one node would give.
    # Found by redis-py's own tests: an SUNSUBSCRIBE sent before the shard had confirmed the
    # SSUBSCRIBE went to another node and was answered first.
    a, b, c, d = _one_channel_per_shard()
    pipeline = b"".join(
        render_command([w.encode() for w in words])
        for words in (
            ["SSUBSCRIBE", a], ["SSUBSCRIBE", b], ["SUBSCRIBE", "plain"], ["SSUBSCRIBE", c],
            ["SUNSUBSCRIBE", a], ["SSUBSCRIBE", d], ["PING"], ["SUNSUBSCRIBE", b, c, d], ["SSUBSCRIBE", a],
            ["SUNSUBSCRIBE"], ["PING", "done"],
        )
    )  # fmt: skip
    replies = {}
    for name in ("one", "ec"):
        sock = _raw(service, name)
        sock.sendall(pipeline)
        replies[name] = read_until(sock, b"$4\r\ndone\r\n")
        sock.close()
    assert replies["ec"] == replies["one"]
    assert replies["one"].count(b"ssubscribe") == 5


def test_a_subscriber_is_listed_as_one_and_a_kill_ends_its_connection(
    service: AmrService, ec: redis.Redis
) -> None:
    # CLIENT LIST on EnterpriseCluster is the gateway's: it shows what each client last ran and its
    # pub/sub mode, as the engine does (redis-py's own tests find a subscriber by its cmd).
    sock = _raw(service, "ec")
    sock.sendall(b"SUBSCRIBE killme\r\n")
    assert read_until(sock, b":1\r\n").endswith(b"$6\r\nkillme\r\n:1\r\n")
    (subscriber,) = [c for c in ec.client_list() if c["cmd"] == "subscribe"]
    assert subscriber["flags"] == "P"
    assert ec.client_list(client_id=[int(subscriber["id"])])[0]["cmd"] == "subscribe"
    assert [c["cmd"] for c in ec.client_list() if c["id"] == str(ec.client_id())] == ["client|list"]
    assert ec.client_kill_filter(_id=subscriber["id"]) == 1
    sock.settimeout(10)
    assert sock.recv(100) == b""  # the connection is closed
    sock.close()


def _one_channel_per_shard() -> list[str]:
    by_shard: dict[int, str] = {}
    for ch in (f"ord{i}" for i in range(100)):
        by_shard.setdefault(_shard_of(ch), ch)
    return [by_shard[s] for s in range(4)]


def test_a_client_subscribed_in_resp3_still_publishes_and_pings(service: AmrService, ec: redis.Redis) -> None:
    client = cache_client(service, "ec", protocol=3)
    pubsub = client.pubsub()
    pubsub.subscribe("r3news")
    _subscribed(pubsub, "subscribe", 1)
    assert ec.publish("r3news", "x") == 1
    assert wait_until(lambda: pubsub.get_message(timeout=0.5), 10)["data"] == "x"
    pubsub.ping()
    assert wait_until(lambda: pubsub.get_message(timeout=0.5), 10)["type"] == "pong"
    pubsub.close()


# --- MONITOR -------------------------------------------------------------------------------------


def _watch_commands(monitor: Any, wanted: set[str]) -> set[str]:
    """Read MONITOR lines until every command in ``wanted`` (as "cmd key") was seen."""
    seen: set[str] = set()
    while not wanted <= seen:
        entry = monitor.next_command()
        seen.add(entry["command"].lower())
    return seen


@pytest.mark.parametrize("name", ["ec", "one"])
def test_monitor_streams_the_commands_of_every_shard(
    service: AmrService, request: pytest.FixtureRequest, name: str
) -> None:
    """As on a single node (NoCluster, spliced to its one node): MONITOR answers OK and streams
    every command the database runs, here from all four shards; the connection stays open."""
    request.getfixturevalue(name)
    watched = cache_client(service, name, socket_timeout=10)
    other = cache_client(service, name)
    keys = [f"mon:{i}" for i in range(8)]
    with watched.monitor() as monitor:
        wanted = {f"set {k} {i}" for i, k in enumerate(keys)}
        if name == "ec":
            assert len({_shard_of(k) for k in keys}) == 4
        for i, k in enumerate(keys):
            other.set(k, i)
        _watch_commands(monitor, wanted)
        # Its own commands still run (PING), but not ones on keys, as on a single node.
        monitor.connection.send_command("PING")
        while monitor.connection.read_response() != "PONG":
            pass
        monitor.connection.send_command("GET", keys[0])
        with pytest.raises(redis.ResponseError, match="Replica can't interact with the keyspace"):
            while True:
                monitor.connection.read_response()
    assert other.get(keys[0]) == "0"


# --- client-side caching -------------------------------------------------------------------------


def _keys_on_every_shard(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}{i}" for i in range(n)]
    assert len({_shard_of(k) for k in keys}) == 4
    return keys


@pytest.mark.parametrize("mode", [TrackingMode.PLAIN, TrackingMode.OPTIN, TrackingMode.OPTOUT])
def test_client_side_caching_is_invalidated_on_every_shard(
    service: AmrService, ec: redis.Redis, mode: TrackingMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's own client-side cache (RESP3 tracking): a value another client overwrites is
    never served stale from the cache, whichever shard holds it."""
    # redis-py enables its cache only for a server that calls itself "redis" (7.4 or later); the
    # engine is Valkey 8.1, which has the same tracking. Nothing else of redis-py is changed.
    monkeypatch.setattr(CacheProxyConnection, "DEFAULT_SERVER_NAME", "valkey")
    keys = _keys_on_every_shard(f"csc-{mode.value}:", 16)
    ec.mset({k: "old" for k in keys})
    # OPTIN/OPTOUT: every key cached but one, so CLIENT CACHING YES (or NO) goes before reads.
    skip = keys[0]
    config = CacheConfig(
        tracking_mode=mode,
        cache_predicate=None if mode is TrackingMode.PLAIN else lambda cmd, ks: skip not in ks,
    )
    cached = cache_client(service, "ec", protocol=3, cache_config=config)
    assert [cached.get(k) for k in keys] == ["old"] * 16
    cache = cached.get_cache()
    assert cache is not None and cache.size == (16 if mode is TrackingMode.PLAIN else 15)
    assert [cached.get(k) for k in keys] == ["old"] * 16
    ec.mset({k: "new" for k in keys})
    # Invalidations arrive as pushes, which redis-py reads before it answers from its cache.
    wait_until(lambda: [cached.get(k) for k in keys] == ["new"] * 16, 10, what="every key invalidated")
    cached.close()


def test_every_invalidation_reaches_a_tracking_connection(service: AmrService, ec: redis.Redis) -> None:
    """On the wire, as the issue measured it: 16 keys read with tracking on, overwritten by another
    client, give 16 invalidation pushes (3 of 16 arrived when tracking reached one shard only)."""
    keys = _keys_on_every_shard("inv:", 16)
    ec.mset({k: "1" for k in keys})
    sock = _raw(service, "ec")
    sock.sendall(b"HELLO 3\r\nCLIENT TRACKING ON\r\n")
    assert read_until(sock, b"+OK\r\n").endswith(b"+OK\r\n")
    sock.sendall(b"".join(b"GET %s\r\n" % k.encode() for k in keys))
    assert read_until(sock, b"$1\r\n1\r\n" * 16).count(b"$1\r\n1\r\n") == 16
    ec.mset({k: "2" for k in keys})
    pushes = b""
    while pushes.count(b">2\r\n$10\r\ninvalidate\r\n") < 16:
        chunk = sock.recv(65536)
        assert chunk, pushes
        pushes += chunk
    assert sorted(k for k in keys if f"${len(k)}\r\n{k}\r\n".encode() in pushes) == sorted(keys)
    # REDIRECT cannot follow invalidations from every shard: refused, saying why.
    sock.sendall(b"CLIENT TRACKING ON REDIRECT 1\r\n")
    assert read_until(sock, b"\r\n").startswith(b"-ERR CLIENT TRACKING REDIRECT is not available")
    sock.close()
