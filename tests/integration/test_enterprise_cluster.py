"""An EnterpriseCluster database with four shards behind one endpoint: a plain (non-cluster) redis-py
client over TLS sees one Redis, while the gateway routes every command by hash slot, splits and fans
out the multi-key and keyspace commands, and refuses cross-slot and CLUSTER commands. A differential
test runs the same random command sequences against it and a single-shard database."""

from __future__ import annotations

import json
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from amr.logic.security.node_credentials import CredentialMasters, database_uid_of_node
from tests.integration.amr_service import (
    FOUR_SHARDS,
    AmrService,
    cache_client,
    create_cache,
    enterprise_cluster,
    first_shard_key,
    raw_connection,
    read_until,
    running_service,
    wait_until,
)
from tests.integration.ha_load import admin_password


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    client = enterprise_cluster(service, "ec")
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "ec", "-g", "rg")
    assert "runs 4 (engine.max_shards_per_database caps it)" in db["properties"]["statusMessage"]
    return client


@pytest.fixture(scope="module")
def single(service: AmrService) -> redis.Redis:
    return create_cache(service, "one", "Balanced_B1", "NoCluster")


def _slot_spread(keys: list[str]) -> int:
    from amr.logic.keyspace.keyslot import choose_key_slot

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
    queue = first_shard_key("queue")
    ec.delete(queue)
    other = cache_client(service, "ec")
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
    client = cache_client(service, "ec", protocol=3)
    client.flushdb()
    client.hset("r3", mapping={"f": "v"})
    assert client.hgetall("r3") == {"f": "v"}
    keys = [f"r3:{i}" for i in range(20)]
    client.mset({k: "1" for k in keys})
    assert client.mget(keys) == ["1"] * 20
    assert client.dbsize() == 21
    assert client.zadd("z", {"a": 1.5}) == 1 and client.zscore("z", "a") == 1.5
    # Pub/sub in RESP3: messages are push frames, passed through as they come.
    pubsub = client.pubsub()
    pubsub.ssubscribe("{r3}chan")
    assert wait_until(lambda: pubsub.get_sharded_message(timeout=0.5), 10)["type"] == "ssubscribe"

    def delivered() -> Any:
        ec.spublish("{r3}chan", "hi")
        return pubsub.get_sharded_message(timeout=0.5)

    assert wait_until(delivered, 10, what="the sharded message")["data"] == "hi"
    pubsub.close()


# --- differential: the same random commands against four shards and one ------------------------


def _random_ops(rng: random.Random, count: int, transactions: bool) -> list[tuple[Any, ...]]:
    keys = [f"d:{i}" for i in range(45)]
    tagged = [f"{{d}}{i}" for i in range(5)]  # one slot: multi-key commands of any kind work on them
    ops: list[tuple[Any, ...]] = []
    for _ in range(count):
        k = rng.choice(keys + tagged)
        ks = rng.sample(keys, rng.randint(1, 6))
        t1, t2, t3 = rng.sample(tagged, 3)
        v = str(rng.randint(0, 99))
        choices: list[tuple[Any, ...]] = [
            ("SET", k, v), ("GET", k), ("INCR", k), ("APPEND", k, v), ("STRLEN", k), ("DEL", *ks),
            ("EXISTS", *ks), ("MGET", *ks), ("MSET", *[x for key in ks for x in (key, v)]), ("TYPE", k),
            ("HSET", k, "f" + v, v), ("HGET", k, "f" + v), ("HLEN", k), ("LPUSH", k, v), ("RPOP", k),
            ("LRANGE", k, "0", "-1"), ("SADD", k, v), ("SCARD", k), ("SISMEMBER", k, v),
            ("ZADD", k, v, "m" + v), ("ZRANGE", k, "0", "-1", "WITHSCORES"), ("EXPIRE", k, "100"),
            ("TTL", k), ("PERSIST", k), ("UNLINK", *ks), ("TOUCH", *ks), ("DBSIZE",), ("SMEMBERS", k),
            ("SUNIONSTORE", t1, t2, t3), ("SINTER", t1, t2), ("SMOVE", t1, t2, v), ("RENAME", t1, t2),
            ("LMOVE", t1, t2, "LEFT", "RIGHT"), ("ZUNIONSTORE", t1, "2", t2, t3), ("MSETNX", t1, v, t2, v),
            ("EVAL", "return redis.call('INCR', KEYS[1]) + #ARGV", "1", t1, v),
        ]  # fmt: skip
        if transactions:
            choices.append(("TX", ("INCR", t1), ("SADD", t2, v), ("GET", t3)))
        ops.append(rng.choice(choices))
    return ops


def _normalise(op: tuple[Any, ...], reply: Any) -> Any:
    if isinstance(reply, Exception):
        return ("error", str(reply).split(" ", 1)[0])
    if op[0] == "SMEMBERS" or op[0] == "SINTER":
        return sorted(reply)
    if op[0] == "TTL" and isinstance(reply, int) and reply > 90:
        return "about 100"  # the two runs may straddle a second
    if op[0] == "TX":
        return [_normalise(sub, r) for sub, r in zip(op[1:], reply, strict=True)]
    return reply


def _run(client: redis.Redis, ops: list[tuple[Any, ...]], pipelined: bool) -> list[Any]:
    if not pipelined:
        out = []
        for op in ops:
            try:
                if op[0] == "TX":
                    tx = client.pipeline(transaction=True)
                    for sub in op[1:]:
                        tx.execute_command(*sub)
                    out.append(_normalise(op, tx.execute(raise_on_error=False)))
                else:
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
        pipelined = batch % 2 == 1
        ops = _random_ops(rng, 100, transactions=not pipelined)
        assert _run(ec, ops, pipelined) == _run(single, ops, pipelined), f"seed {seed} batch {batch}"
    assert sorted(ec.keys("*")) == sorted(single.keys("*"))
    assert set(ec.scan_iter(count=7)) == set(single.scan_iter(count=7))


# --- topology changes: a slot migrated under a running client, a shard failover -----------------


def _nodes_by_id(service: AmrService, port: int) -> dict[str, redis.Redis]:
    """Admin clients of a database's nodes (as its route lists them), by cluster node id."""
    from tests.integration.ha_load import admin_client, routes_of

    out = {}
    for node in routes_of(service.home, port)["nodes"]:
        admin = admin_client(service.home, node["socket"])
        out[admin.execute_command("CLUSTER MYID")] = admin
    return out


def _internal_host(node: redis.Redis) -> str:
    """The address a node listens on for its peers (engine.internal_host)."""
    return str(node.config_get("bind")["bind"]).split()[0]


def test_a_slot_migrated_under_a_client_is_followed_through_ask_and_moved(
    service: AmrService, ec: redis.Redis
) -> None:
    from amr.logic.keyspace.keyslot import choose_key_slot

    slot = choose_key_slot(b"mig")
    keys = [f"{{mig}}k{i}" for i in range(60)]
    ec.mset({k: k for k in keys})
    port = int(ec.connection_pool.connection_kwargs["port"])
    nodes = _nodes_by_id(service, port)
    some = next(iter(nodes.values()))
    owner_id = next(
        entry[2][2] for entry in some.execute_command("CLUSTER SLOTS") if entry[0] <= slot <= entry[1]
    )
    ec_ids = {entry[2][2] for entry in some.execute_command("CLUSTER SLOTS")}
    src = nodes[owner_id]
    dst_id = next(i for i in ec_ids if i != owner_id)
    dst = nodes[dst_id]
    dst_port = int(dst.info("server")["tcp_port"])
    password = admin_password(service.home, str(src.connection_pool.connection_kwargs["path"]))

    def migrate(moving: list[str]) -> None:
        src.execute_command(
            "MIGRATE", _internal_host(dst), dst_port, "", 0, 5000, "AUTH2", "amr-admin", password, "KEYS",
            *moving,
        )  # fmt: skip

    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", owner_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    # Half the keys move: those are answered with ASK by their old node, and new keys too.
    migrate(keys[:30])
    # (A multi-key command over moved and unmoved keys gets TRYAGAIN until the slot has moved, from
    # the engine as from any cluster: single-key commands are the ones that must just work.)
    assert [ec.get(k) for k in keys] == keys
    assert ec.set("{mig}new", "n") is True and ec.get("{mig}new") == "n"
    assert dst.execute_command("DBSIZE") >= 31  # the new key went to the importing node
    migrate(keys[30:])
    for node_id in ec_ids:
        nodes[node_id].execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    # The old node now answers MOVED; the client never sees it.
    pipe = ec.pipeline(transaction=False)
    for k in keys:
        pipe.get(k)
    assert pipe.execute() == keys
    assert ec.get("{mig}new") == "n" and ec.exists(*keys) == 60


def test_high_availability_shard_failover_is_followed(service: AmrService) -> None:
    import os
    import signal

    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    create_cache(service, "echa", "Balanced_B3", "EnterpriseCluster", ha="Enabled")
    client = cache_client(service, "echa", retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 20))
    keys = [f"ha:{i}" for i in range(200)]
    client.mset({k: k for k in keys})
    assert client.dbsize() == 200
    before = set(service.node_pids())
    # The primary serving slot 16383 (the last shard) is killed; its replica takes over.
    port = client.connection_pool.connection_kwargs["port"]
    from tests.integration.ha_load import routes_of

    route = routes_of(service.home, port)
    assert route["mode"] == "cluster" and len(route["nodes"]) == 4
    by_socket = {n["socket"]: n for n in route["nodes"]}
    from tests.integration.ha_load import admin_client

    some = admin_client(service.home, route["nodes"][0]["socket"])
    wait_until(lambda: len(some.execute_command("CLUSTER SLOTS")) == 2, 30, what="two shards")
    last = next(e for e in some.execute_command("CLUSTER SLOTS") if e[1] == 16383)
    victim = next(s for s, n in by_socket.items() if n["port"] == int(last[2][1]))
    replica = next(
        s for s, n in by_socket.items() if n["shard"] == by_socket[victim]["shard"] and s != victim
    )
    wait_until(
        lambda: admin_client(service.home, replica).info("replication")["master_link_status"] == "up",
        30,
        what="the replica in sync",
    )
    assert client.execute_command("WAIT", 1, 2000) is not None
    name = victim.rsplit("/", 1)[1].removesuffix(".sock")
    assert name in before
    os.kill(service.node_pids()[name], signal.SIGKILL)
    wait_until(lambda: client.set("ha:after", "1"), 30, interval=0.2, what="writes again")
    wait_until(lambda: client.mget(keys) == keys, 30, interval=0.2, what="every key readable")
    assert admin_client(service.home, replica).info("replication")["role"] == "master"


def test_inline_commands_work_and_malformed_input_gets_an_error_not_a_crash(
    service: AmrService, ec: redis.Redis
) -> None:
    sock, key = raw_connection(service, "ec")
    # AUTH pipelined with commands for several shards, some inline, one split across writes.
    sock.sendall(b"AUTH " + key + b"\r\nSET foo 1\r\n*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\nPI")
    sock.sendall(b"NG\r\nMGET foo bar\r\n")
    assert read_until(sock, b"$-1\r\n") == b"+OK\r\n+OK\r\n$1\r\n1\r\n+PONG\r\n*2\r\n$1\r\n1\r\n$-1\r\n"
    # A later AUTH goes to every node connection the client has; all of them answer OK as one.
    sock.sendall(b"AUTH " + key + b"\r\nMGET foo bar {bar}x\r\n")
    assert read_until(sock, b"$-1\r\n$-1\r\n") == b"+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n"
    sock.sendall(b"*2\r\n:1\r\n$1\r\nx\r\n")  # an integer where a bulk string belongs
    reply = read_until(sock, b"\r\n")
    assert reply.startswith(b"-ERR Protocol error")
    assert sock.recv(100) == b""  # closed after the error
    sock.close()
    assert ec.get("foo") == "1" and ec.ping() is True  # the gateway serves on
    # QUIT is answered and ends the connection; what was pipelined after it does not run.
    sock, key = raw_connection(service, "ec")
    sock.sendall(b"AUTH " + key + b"\r\nQUIT\r\nSET after-quit 1\r\n")
    assert read_until(sock, b"\r\n+OK\r\n") == b"+OK\r\n+OK\r\n"
    assert sock.recv(100) == b""
    sock.close()
    assert ec.exists("after-quit") == 0


def test_large_values_and_a_long_pipeline_pass_through_flow_control(ec: redis.Redis) -> None:
    big = "x" * (5 << 20)
    assert ec.set("big", big) is True
    assert ec.get("big") == big
    value = "v" * 1024
    keys = [f"fc:{i}" for i in range(20_000)]
    pipe = ec.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, value)
    assert all(pipe.execute())
    pipe = ec.pipeline(transaction=False)
    for k in keys:
        pipe.get(k)
    assert pipe.execute() == [value] * len(keys)
    assert ec.delete(*keys, "big") == len(keys) + 1


def test_an_authenticated_client_cannot_switch_to_an_internal_user(
    service: AmrService, ec: redis.Redis
) -> None:
    # The router reads every command after authentication too: AUTH as amr's admin user, with its
    # real password, is answered WRONGPASS and the connection stays the default user.
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "ec", "-g", "rg")
    key = service.primary_key("ec").encode()
    # The real amr-admin password on this database's nodes (derived from the admin master secret).
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == db["properties"]["port"]]
    master = (service.home / "secrets" / "admin.secret").read_text().strip()
    admin = CredentialMasters(admin=master).admin_for(database_uid_of_node(route["target"])).encode()
    tls = ssl.create_default_context(cafile=service.ca_file)
    raw = socket.create_connection(("127.0.0.1", db["properties"]["port"]), timeout=5)
    with tls.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"AUTH %s\r\nAUTH amr-admin %s\r\nCLIENT INFO\r\n" % (key, admin))
        got = b""
        s.settimeout(3)
        while b" user=" not in got or not got.endswith(b"\r\n"):
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                raise AssertionError(got) from None
            assert chunk, got
            got += chunk
    assert got.startswith(b"+OK\r\n-WRONGPASS") and b" user=default " in got, got
