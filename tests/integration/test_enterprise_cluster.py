"""An EnterpriseCluster database with four shards behind one endpoint: a plain (non-cluster) redis-py
client over TLS sees one Redis, while the gateway routes every command by hash slot, splits and fans
out the multi-key and keyspace commands, and refuses cross-slot and CLUSTER commands. A differential
test runs the same random command sequences against it and a single-shard database."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.integration.amr_service import AmrService, wait_until


def _create(service: AmrService, name: str, sku: str, policy: str, ha: str = "Disabled") -> redis.Redis:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy, "--high-availability", ha,
    )  # fmt: skip
    return _client(service, name)


def _client(service: AmrService, name: str, **kwargs: Any) -> redis.Redis:
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    key = service.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", name, "-g", "rg")[
        "primaryKey"
    ]
    client = redis.Redis(
        host="localhost", port=db["properties"]["port"], password=key, ssl=True,
        ssl_ca_certs=service.ca_file, decode_responses=True, **kwargs,
    )  # fmt: skip
    wait_until(client.ping, 30, what=f"{name} answers")
    return client


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    svc = AmrService({"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    client = _create(service, "ec", "Balanced_B20", "EnterpriseCluster")
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "ec", "-g", "rg")
    assert db["properties"]["shardCount"] == 4
    return client


@pytest.fixture(scope="module")
def single(service: AmrService) -> redis.Redis:
    return _create(service, "one", "Balanced_B1", "NoCluster")


def _slot_spread(keys: list[str]) -> int:
    from amr.logic.keyslot import choose_key_slot

    return len({choose_key_slot(k.encode()) * 4 // 16384 for k in keys})


def test_single_key_commands_and_a_pipeline_across_shards_keep_their_order(ec: redis.Redis) -> None:
    ec.flushdb()
    assert ec.set("foo", "bar") is True and ec.get("foo") == "bar"
    assert ec.incr("counter") == 1 and ec.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert ec.hgetall("h") == {"a": "1", "b": "2"}
    pipe = ec.pipeline(transaction=False)
    keys = [f"k{i}" for i in range(150)]
    assert _slot_spread(keys) == 4
    for i, key in enumerate(keys):
        pipe.set(key, i)
        pipe.incr(key)
        pipe.get(key)
    out = pipe.execute()
    assert out == [x for i in range(150) for x in (True, i + 1, str(i + 1))]
    assert ec.ping() is True and ec.echo("hi") == "hi"


def test_cross_slot_multi_key_commands_are_split(ec: redis.Redis) -> None:
    ec.flushdb()
    keys = [f"user:{i}" for i in range(40)]
    assert _slot_spread(keys) == 4
    assert ec.mset({k: f"v{i}" for i, k in enumerate(keys)}) is True
    assert ec.mget(keys + ["missing"]) == [f"v{i}" for i in range(40)] + [None]
    assert ec.exists(*keys, "missing", keys[0]) == 41
    assert ec.touch(*keys) == 40
    assert ec.dbsize() == 40
    assert ec.delete(*keys[:10]) == 10
    assert ec.unlink(*keys[10:20], "missing") == 10
    assert ec.dbsize() == 20
    assert sorted(ec.keys("user:*")) == sorted(keys[20:])
    assert ec.randomkey() in keys[20:]
    info = ec.info("keyspace")
    assert info["db0"]["keys"] == 20
    ec.expire(keys[20], 100)
    assert ec.info("keyspace")["db0"]["expires"] == 1
    assert ec.flushdb() is True and ec.dbsize() == 0 and ec.randomkey() is None


def test_scan_returns_every_key_exactly_once(ec: redis.Redis) -> None:
    ec.flushdb()
    keys = {f"scan:{i}" for i in range(500)} | {f"other:{i}" for i in range(20)}
    ec.mset({k: "x" for k in keys})
    seen: list[str] = []
    cursor = 0
    while True:
        cursor, batch = ec.scan(cursor, match="scan:*", count=50)
        seen += batch
        if cursor == 0:
            break
    assert len(seen) == len(set(seen)) == 500 and set(seen) == {k for k in keys if k.startswith("scan:")}
    assert set(ec.scan_iter(count=1000)) == keys
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        ec.scan("notacursor")


def test_cross_slot_refusals_and_cluster_commands_are_blocked(ec: redis.Redis) -> None:
    ec.sadd("{a}s1", "x")
    ec.sadd("b-s2", "y")
    with pytest.raises(redis.ResponseError, match="hash to the same slot"):
        ec.sunionstore("dest", "{a}s1", "b-s2")
    assert ec.sunionstore("{a}dest", "{a}s1") == 1
    for sub in ("INFO", "HELP", "KEYSLOT foo", "NODES", "SLOTS", "SHARDS"):
        with pytest.raises(redis.ResponseError, match="unknown command 'CLUSTER'"):
            ec.execute_command(f"CLUSTER {sub}")


def test_transactions_scripts_and_functions(ec: redis.Redis) -> None:
    ec.flushdb()
    pipe = ec.pipeline(transaction=True)
    pipe.set("{t}a", 1).incr("{t}a").get("{t}a")
    assert pipe.execute() == [True, 2, "2"]
    pipe = ec.pipeline(transaction=True)
    pipe.set("{t}a", 1).set("elsewhere-key", 2)
    with pytest.raises(redis.ResponseError, match="SET elsewhere-key 2.*hash to the same slot"):
        pipe.execute()
    assert ec.get("{t}a") == "2"  # the aborted transaction changed nothing
    # The same on the wire: the refused command fails the transaction, as the engine's EXECABORT.
    conn = ec.connection_pool.get_connection()
    try:
        replies = []
        for cmd in (("MULTI",), ("SET", "{t}a", "9"), ("SET", "elsewhere-key", "2"), ("EXEC",)):
            conn.send_command(*cmd)
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as e:
                replies.append(str(e).split(" ", 1)[0])
        assert replies == ["OK", "QUEUED", "Keys", "Transaction"]
    finally:
        ec.connection_pool.release(conn)
    assert ec.get("{t}a") == "2"
    with ec.pipeline(transaction=True) as pipe:
        pipe.watch("{w}x")
        pipe.multi()
        pipe.set("{w}x", "1")
        assert pipe.execute() == [True]
    script = "return redis.call('SET', KEYS[1], ARGV[1])"
    for i in range(20):
        assert ec.eval(script, 1, f"ev{i}", str(i)) == "OK"
    assert ec.mget([f"ev{i}" for i in range(20)]) == [str(i) for i in range(20)]
    assert ec.eval("return 42", 0) == 42
    sha = ec.script_load("return redis.call('GET', KEYS[1])")
    assert [ec.evalsha(sha, 1, f"ev{i}") for i in range(20)] == [str(i) for i in range(20)]


def test_blocking_pop_is_woken_by_another_client_and_pub_sub_delivers(
    service: AmrService, ec: redis.Redis
) -> None:
    from amr.logic.keyslot import choose_key_slot

    # A list on the first shard (slots 0-4095), whose INFO is the one INFO answers with.
    queue = next(f"queue{i}" for i in range(1000) if choose_key_slot(f"queue{i}".encode()) < 4096)
    ec.delete(queue)
    other = _client(service, "ec")
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(ec.blpop([queue], timeout=20)))
    waiter.start()
    wait_until(lambda: other.info("clients")["blocked_clients"] == 1, 10, what="BLPOP blocked")
    assert other.set("unrelated", "1") is True  # the other client is not held up meanwhile
    other.rpush(queue, "job")
    waiter.join(15)
    assert result == [(queue, "job")]

    pubsub = ec.pubsub()
    pubsub.subscribe("news")
    assert wait_until(lambda: pubsub.get_message(timeout=0.5), 10)["type"] == "subscribe"

    def delivered() -> Any:
        other.publish("news", "hello")
        return pubsub.get_message(timeout=0.5)

    assert wait_until(delivered, 10, what="the published message")["data"] == "hello"
    pubsub.close()


def test_a_resp3_client_works(service: AmrService, ec: redis.Redis) -> None:
    client = _client(service, "ec", protocol=3)
    client.flushdb()
    client.hset("r3", mapping={"f": "v"})
    assert client.hgetall("r3") == {"f": "v"}
    keys = [f"r3:{i}" for i in range(20)]
    client.mset({k: "1" for k in keys})
    assert client.mget(keys) == ["1"] * 20
    assert client.dbsize() == 21
    assert client.zadd("z", {"a": 1.5}) == 1 and client.zscore("z", "a") == 1.5


# --- differential: the same random commands against four shards and one ------------------------


def _random_ops(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    keys = [f"d:{i}" for i in range(50)]
    ops: list[tuple[Any, ...]] = []
    for _ in range(count):
        k = rng.choice(keys)
        ks = rng.sample(keys, rng.randint(1, 6))
        v = str(rng.randint(0, 99))
        ops.append(rng.choice([
            ("SET", k, v), ("GET", k), ("INCR", k), ("APPEND", k, v), ("STRLEN", k), ("DEL", *ks),
            ("EXISTS", *ks), ("MGET", *ks), ("MSET", *[x for key in ks for x in (key, v)]), ("TYPE", k),
            ("HSET", k, "f" + v, v), ("HGET", k, "f" + v), ("HLEN", k), ("LPUSH", k, v), ("RPOP", k),
            ("LRANGE", k, "0", "-1"), ("SADD", k, v), ("SCARD", k), ("SISMEMBER", k, v),
            ("ZADD", k, v, "m" + v), ("ZRANGE", k, "0", "-1", "WITHSCORES"), ("EXPIRE", k, "100"),
            ("TTL", k), ("PERSIST", k), ("UNLINK", *ks), ("TOUCH", *ks), ("DBSIZE",), ("SMEMBERS", k),
        ]))  # fmt: skip
    return ops


def _normalise(op: tuple[Any, ...], reply: Any) -> Any:
    if isinstance(reply, Exception):
        return ("error", str(reply).split(" ", 1)[0])
    if op[0] == "SMEMBERS":
        return sorted(reply)
    return reply


def _run(client: redis.Redis, ops: list[tuple[Any, ...]], pipelined: bool) -> list[Any]:
    if not pipelined:
        out = []
        for op in ops:
            try:
                out.append(_normalise(op, client.execute_command(*op)))
            except redis.ResponseError as e:
                out.append(_normalise(op, e))
        return out
    pipe = client.pipeline(transaction=False)
    for op in ops:
        pipe.execute_command(*op)
    return [_normalise(op, r) for op, r in zip(ops, pipe.execute(raise_on_error=False), strict=True)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_command_sequences_answer_like_a_single_shard(
    ec: redis.Redis, single: redis.Redis, seed: int
) -> None:
    rng = random.Random(seed)
    for client in (ec, single):
        client.flushdb()
    for batch in range(4):
        ops = _random_ops(rng, 100)
        pipelined = batch % 2 == 1
        assert _run(ec, ops, pipelined) == _run(single, ops, pipelined), f"seed {seed} batch {batch}"
    assert sorted(ec.keys("*")) == sorted(single.keys("*"))
    assert set(ec.scan_iter(count=7)) == set(single.scan_iter(count=7))
