"""Shared node connections of an EnterpriseCluster endpoint (the router's multiplexing), with real
nodes, the real gateway over TLS and redis-py: plain clients of one key and protocol share one
connection per node and still get exactly their own replies under concurrent pipelines; clients in a
transaction, blocked, subscribed or named keep connections of their own and neither hold up nor are
held up by the others; another key or protocol version gets other shared connections; and a node
killed under pipelining clients gives each of them its replies or a clean error, never a hang or
another client's reply."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.amr_service import (
    FOUR_SHARDS,
    AmrService,
    cache_client,
    create_cache,
    first_shard_key,
    running_service,
    wait_until,
)
from tests.integration.ha_load import admin_client, node_name, routes_of

THREAD_DEADLINE = 60


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    return create_cache(service, "mux", "Balanced_B20", "EnterpriseCluster")


def _port(client: redis.Redis) -> int:
    return int(client.connection_pool.connection_kwargs["port"])


def _data_connections(service: AmrService, port: int) -> dict[str, list[dict[str, Any]]]:
    """The data-plane (``default`` user) connections on each node of the database, by node socket."""
    out = {}
    for node in routes_of(service.home, port)["nodes"]:
        listed = admin_client(service.home, node["socket"]).client_list()
        out[node["socket"]] = [c for c in listed if c["user"] == "default"]
    return out


def _auth_node(service: AmrService, port: int) -> str:
    """The node every routed client authenticates on (its first connection, kept for its own use)."""
    return str(routes_of(service.home, port)["target"])


def _pipelined_load(client: redis.Redis, tag: str, rounds: int, problems: list[str]) -> None:
    """Pipelines of SET and GET of this client's keys (across all shards), each reply checked."""
    for r in range(rounds):
        pipe = client.pipeline(transaction=False)
        for j in range(40):
            pipe.set(f"{tag}:{j}", f"{tag}:{r}:{j}")
            pipe.get(f"{tag}:{j}")
            pipe.incr(f"{tag}:n")
        out = pipe.execute()
        expected = [x for j in range(40) for x in (True, f"{tag}:{r}:{j}", r * 40 + j + 1)]
        if out != expected:
            problems.append(f"{tag} round {r}: {out[:6]!r}...")
            return


def _run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + THREAD_DEADLINE
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.1))
    assert not any(t.is_alive() for t in threads), "a client hung"


def test_clients_of_one_key_share_a_connection_per_node_and_get_only_their_own_replies(
    service: AmrService, ec: redis.Redis
) -> None:
    port = _port(ec)
    clients = [cache_client(service, "mux") for _ in range(8)]
    problems: list[str] = []
    _run_threads(
        [lambda c=c, i=i: _pipelined_load(c, f"share{i}", 30, problems) for i, c in enumerate(clients)]
    )
    assert problems == []
    auth_node = _auth_node(service, port)
    conns = _data_connections(service, port)
    assert len(conns) == 4
    # Every other node: one shared connection for all eight clients (plus ec's, the same identity).
    for socket, listed in conns.items():
        if socket != auth_node:
            assert len(listed) == 1, (node_name(socket), [(c["cmd"], c["age"]) for c in listed])
    # The node they authenticated on: each client's first connection, idle, and the shared one.
    assert len(conns[auth_node]) <= len(clients) + 2
    for c in clients:
        c.close()


def test_stateful_clients_keep_their_own_connections_beside_the_shared_ones(
    service: AmrService, ec: redis.Redis
) -> None:
    queue = first_shard_key("muxq")
    ec.delete(queue)
    blocker = cache_client(service, "mux")
    popped: list[Any] = []
    waiter = threading.Thread(target=lambda: popped.append(blocker.blpop([queue], timeout=30)), daemon=True)
    waiter.start()
    wait_until(lambda: ec.info("clients")["blocked_clients"] == 1, 10, what="BLPOP blocked")

    plain = [cache_client(service, "mux") for _ in range(3)]
    tx_client, named, subscriber = (cache_client(service, "mux") for _ in range(3))
    named.client_setname("mux-named")
    pubsub = subscriber.pubsub()
    pubsub.subscribe("mux-news")
    assert wait_until(lambda: pubsub.get_message(timeout=0.5), 10)["type"] == "subscribe"
    problems: list[str] = []

    def transactions() -> None:
        for n in range(1, 41):
            pipe = tx_client.pipeline(transaction=True)
            pipe.incr("{muxtx}n").get("{muxtx}n").set("{muxtx}last", n)
            if pipe.execute() != [n, str(n), True]:
                problems.append(f"transaction {n}")
                return

    def named_load() -> None:
        _pipelined_load(named, "named", 10, problems)
        if named.client_getname() != "mux-named":
            problems.append("the name was lost")

    def messages() -> None:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 20 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                got.append(message)
        if [m["data"] for m in got] != [f"m{i}" for i in range(20)] or {m["type"] for m in got} != {
            "message"
        }:
            problems.append(f"pub/sub got {got[:3]!r}...")

    def publish() -> None:
        for i in range(20):
            ec.publish("mux-news", f"m{i}")

    ec.delete("{muxtx}n")
    loads = [lambda c=c, i=i: _pipelined_load(c, f"iso{i}", 30, problems) for i, c in enumerate(plain)]
    _run_threads([*loads, transactions, named_load, messages, publish])
    assert problems == []
    assert waiter.is_alive()  # the plain clients, on the same shared connections, were not held up
    ec.rpush(queue, "job")
    waiter.join(15)
    assert popped == [(queue, "job")]
    # A name is the gateway's to keep (CLIENT SETNAME is answered by it): no node connection took it,
    # shared or not, and the database's CLIENT LIST shows it on the named client alone.
    named_conns = [
        c for listed in _data_connections(service, _port(ec)).values() for c in listed if c["name"]
    ]
    assert named_conns == []
    assert [c["name"] for c in ec.client_list() if c["name"]] == ["mux-named"]
    pubsub.close()
    for c in (*plain, tx_client, named, subscriber, blocker):
        c.close()


def test_another_key_or_protocol_gets_other_shared_connections(service: AmrService, ec: redis.Redis) -> None:
    port = _port(ec)
    keys = service.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", "mux", "-g", "rg")

    def client(key: str, protocol: int) -> redis.Redis:
        c = redis.Redis(
            host="localhost", port=port, password=keys[key], protocol=protocol, ssl=True,
            ssl_ca_certs=service.ca_file, decode_responses=True,
        )  # fmt: skip
        assert c.ping() is True
        return c

    groups = {
        "primary3": [client("primaryKey", 3) for _ in range(2)],
        "secondary3": [client("secondaryKey", 3) for _ in range(2)],
        "primary2": [client("primaryKey", 2) for _ in range(2)],
    }
    problems: list[str] = []
    _run_threads(
        [
            lambda c=c, tag=f"{name}{i}": _pipelined_load(c, tag, 10, problems)
            for name, members in groups.items()
            for i, c in enumerate(members)
        ]
    )
    assert problems == []
    auth_node = _auth_node(service, port)

    def per_node() -> list[tuple[int, int]]:
        """(connections, RESP3 ones) on each node but the one the clients authenticated on."""
        conns = _data_connections(service, port)
        return [(len(v), sum(1 for c in v if c["resp"] == "3")) for s, v in conns.items() if s != auth_node]

    # Three identities, two clients each: three shared connections per node, one of them RESP2.
    wait_until(lambda: per_node() == [(3, 2)] * 3, 10, what="one shared connection per identity and node")
    for members in groups.values():
        for c in members:
            c.close()


def test_a_node_killed_under_pipelining_clients_gives_replies_or_clean_errors(
    service: AmrService, ec: redis.Redis
) -> None:
    port = _port(ec)
    # No retries by redis-py itself: a connection the gateway closes shows as an error here.
    clients = [cache_client(service, "mux", socket_timeout=20, retry=Retry(NoBackoff(), 0)) for _ in range(6)]
    stop = threading.Event()
    problems: list[str] = []
    outcomes: dict[str, int] = {"ok": 0, "error": 0}
    lock = threading.Lock()

    def load(client: redis.Redis, tag: str) -> None:
        r = 0
        while not stop.is_set():
            r += 1
            pipe = client.pipeline(transaction=False)
            for j in range(30):
                pipe.set(f"{tag}:{j}", f"{tag}:{r}:{j}")
                pipe.get(f"{tag}:{j}")
            try:
                out = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if isinstance(e, redis.TimeoutError):
                    problems.append(f"{tag}: no answer within the socket timeout")
                    return
                with lock:
                    outcomes["error"] += 1
                continue
            for j in range(30):
                set_reply, get_reply = out[2 * j], out[2 * j + 1]
                if isinstance(set_reply, Exception) or isinstance(get_reply, Exception):
                    continue  # an error the client sees (CLUSTERDOWN while the node restarts)
                if set_reply is not True or get_reply != f"{tag}:{r}:{j}":
                    problems.append(f"{tag} round {r} key {j}: {set_reply!r} {get_reply!r}")
                    return
            with lock:
                outcomes["ok"] += 1

    threads = [
        threading.Thread(target=load, args=(c, f"kill{i}"), daemon=True) for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: outcomes["ok"] >= 20, 30, what="clients pipelining")
    auth_node = _auth_node(service, port)
    victim = node_name(
        next(n["socket"] for n in routes_of(service.home, port)["nodes"] if n["socket"] != auth_node)
    )
    pid = service.node_pids()[victim]
    os.kill(pid, signal.SIGKILL)
    # The supervisor restarts the node: the clients are served again.
    wait_until(lambda: service.node_pids().get(victim, pid) != pid, 30, what="the node restarted")
    served = outcomes["ok"]
    wait_until(lambda: outcomes["ok"] >= served + 20, 60, interval=0.2, what="served again")
    stop.set()
    for t in threads:
        t.join(THREAD_DEADLINE)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert problems == []
    for c in clients:
        c.close()
