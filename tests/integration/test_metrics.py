"""Metric collection against truth the test creates: `amr monitord` samples a NoCluster HA database
and a four-shard EnterpriseCluster database every second into its store, which the test reads
directly. After exactly N SETs and M GETs (hits and misses known) the Sets, Gets, hits, misses and
total operations of that window are exactly those, although `amr ha` probes the HA database's nodes
ten times a second, the gateway polls ROLE and the control plane and the collector run their own
commands: none of amr's commands count. Keys, memory and connected clients match what the engine and
the gateway say; evicted keys match a forced eviction. Counting stays exact after a primary is
killed and replaced, and with the API stopped; the time amr was stopped has no points."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from amr.logic.keyspace.keyslot import choose_key_slot
from amr.logic.security.node_credentials import CredentialMasters, database_uid_of_node
from amr.monitor.collector import resource_of
from amr.monitor.main import STORE_FILE_NAME
from amr.monitor.store import MetricStore, Series
from amr.nodes.supervisor import SupervisorClient
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

COUNTED = ("setcommands", "getcommands", "cachehits", "cachemisses", "totalcommandsprocessed")


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service({**FOUR_SHARDS, "AMR_MONITOR_SAMPLE_INTERVAL": "1"})


@pytest.fixture(scope="module")
def store(service: AmrService) -> Iterator[MetricStore]:
    path = service.home / "monitor" / STORE_FILE_NAME
    wait_until(path.exists, 30, what="amr monitord creates its store")
    store = MetricStore(path)
    yield store
    store.close()


@pytest.fixture(scope="module")
def nocluster(service: AmrService) -> redis.Redis:
    return create_cache(service, "nc", "Balanced_B1", "NoCluster", ha="Enabled")


@pytest.fixture(scope="module")
def ec(service: AmrService) -> redis.Redis:
    return enterprise_cluster(service, "ec")


def resource(service: AmrService, name: str) -> str:
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    return resource_of(db["id"])


def last_point(store: MetricStore, res: str, metric: str = "totalcommandsprocessed") -> int:
    points = store.points(Series(res, metric))
    return points[-1][0] if points else 0


def next_point(store: MetricStore, res: str, after: float) -> int:
    """The time of the first point of ``res`` sampled after wall-clock time ``after``."""
    return wait_until(
        lambda: (t := last_point(store, res)) > after and t, 30, what="a sample after the traffic"
    )


def window_sums(store: MetricStore, res: str, start: int, end: int) -> dict[str, float]:
    """Each counted metric's sum over the points with start < t <= end."""
    return {m: sum(v for _, v in store.points(Series(res, m), start + 1, end + 1)) for m in COUNTED}


def counted_window(store: MetricStore, res: str, traffic: Callable[[], object]) -> dict[str, float]:
    """Run ``traffic`` between two samples; the counted metrics of exactly that window."""
    wait_until(lambda: last_point(store, res), 60, what="the database's first samples")
    # Wait for a fresh point: everything before it (connecting, warming up) is in its interval or earlier.
    start = next_point(store, res, time.time())
    traffic()
    end = next_point(store, res, time.time())
    return window_sums(store, res, start, end)


def truth(sets: int, hits: int, misses: int) -> dict[str, float]:
    """The counted metrics of ``sets`` SETs and ``hits + misses`` GETs and nothing else."""
    return {
        "setcommands": sets,
        "getcommands": hits + misses,
        "cachehits": hits,
        "cachemisses": misses,
        "totalcommandsprocessed": sets + hits + misses,
    }


def run_traffic(client: redis.Redis, keys: list[str], missing: list[str]) -> None:
    """len(keys) SETs, then a GET of each key (hits) and of each missing key (misses)."""
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.set(key, i)
    pipe.execute()
    pipe = client.pipeline(transaction=False)
    for key in keys + missing:
        pipe.get(key)
    pipe.execute()


def traffic_window(
    store: MetricStore, res: str, client: redis.Redis, sets: int, misses: int
) -> dict[str, float]:
    """On an emptied database: ``sets`` SETs, a GET of each (hits) and ``misses`` GETs of absent keys,
    between two samples; the counted metrics of that window."""
    client.flushall()
    keys = [f"user:{i}" for i in range(sets)]
    missing = [f"nobody:{i}" for i in range(misses)]
    if sets >= 40:
        # The EnterpriseCluster router's links to every shard are open before the window (opening
        # one is its AUTH, a command of the tenant's).
        assert len({choose_key_slot(k.encode()) * 4 // 16384 for k in keys}) == 4
        for key in keys[:40]:
            client.get(key)
    return counted_window(store, res, lambda: run_traffic(client, keys, missing))


def test_counts_are_exact_and_amrs_own_commands_do_not_count(
    service: AmrService, store: MetricStore, nocluster: redis.Redis
) -> None:
    res = resource(service, "nc")
    sums = traffic_window(store, res, nocluster, 150, 37)
    # The replica replays each SET (not counted again); amr ha's PING + INFO at 10 Hz on both nodes,
    # the gateway's ROLE polls, the control plane's and the collector's commands are not counted.
    assert sums == truth(150, 150, 37)
    # An idle database: amr's probes, ROLE polls, the reconciler's and the collector's own commands
    # go on, and count nothing.
    idle = counted_window(store, res, lambda: time.sleep(3))
    assert idle["totalcommandsprocessed"] == 0
    # Keys and memory are what the engine says.
    wait_until(lambda: store.points(Series(res, "totalkeys"))[-1][1] == 150, 10, what="totalkeys")
    memory = nocluster.info("memory")
    percent = store.points(Series(res, "usedmemorypercentage"))[-1][1]
    assert percent == pytest.approx(100 * memory["used_memory"] / memory["maxmemory"], abs=1.0)


def test_a_four_shard_enterprise_cluster_database(
    service: AmrService, store: MetricStore, ec: redis.Redis
) -> None:
    res = resource(service, "ec")
    assert traffic_window(store, res, ec, 200, 50) == truth(200, 200, 50)
    wait_until(
        lambda: store.points(Series(res, "totalkeys"))[-1][1] == 200, 10, what="keys on all four shards"
    )
    # Per-node metrics name the node: four primaries.
    nodes = {dims for metric, dims in store.series(res) if metric == "cacheRead"}
    assert len(nodes) == 4


def test_evicted_keys_match_a_forced_eviction(service: AmrService, store: MetricStore) -> None:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "ev", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy",
        "NoCluster", "--high-availability", "Disabled", "--eviction-policy", "AllKeysRandom",
    )  # fmt: skip
    client = cache_client(service, "ev")
    res = resource(service, "ev")
    evicted_before = client.info("stats")["evicted_keys"]
    value = b"x" * (1 << 20)

    def fill() -> None:
        # 700 MB into a 0.5 GB database: the engine evicts keys to make room.
        for batch in range(14):
            pipe = client.pipeline(transaction=False)
            for i in range(50):
                pipe.set(f"big:{batch}:{i}", value)
            pipe.execute()

    start = next_point(store, res, time.time())
    fill()
    # The engine may go on evicting for a moment after the last write (its eviction runs in time
    # slices): the count is final once two reads a sample interval apart agree.
    seen: list[int] = []

    def settled() -> bool:
        seen.append(client.info("stats")["evicted_keys"])
        return len(seen) > 1 and seen[-1] == seen[-2]

    wait_until(settled, 30, interval=1.5, what="evictions to stop")
    end = next_point(store, res, time.time())
    evicted = seen[-1] - evicted_before
    assert evicted > 100
    assert sum(v for _, v in store.points(Series(res, "evictedkeys"), start + 1, end + 1)) == evicted
    client.close()


def test_connected_clients_as_the_gateway_sees_them(
    service: AmrService, store: MetricStore, nocluster: redis.Redis
) -> None:
    res = resource(service, "nc")
    nocluster.ping()  # the fixture's client: one connection
    held = [cache_client(service, "nc") for _ in range(5)]
    for client in held:
        client.ping()

    def connected() -> float:
        series = [dims for metric, dims in store.series(res) if metric == "connectedclients"]
        return sum(store.points(Series(res, "connectedclients", d))[-1][1] for d in series)

    wait_until(lambda: connected() == 6, 15, what="six connections")
    for client in held:
        client.close()
    wait_until(lambda: connected() == 1, 15, what="back to the fixture's one")
    # The gateway's own counters: a failed AUTH counts once, on the database it was for.
    sock, _ = raw_connection(service, "nc")
    sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$11\r\nnot-the-key\r\n")
    assert read_until(sock, b"\r\n").startswith(b"-WRONGPASS")
    sock.close()
    wait_until(lambda: total(store, res, "gatewayAuthFailures") == 1, 15, what="one failed AUTH")
    assert total(store, resource(service, "ec"), "gatewayAuthFailures") == 0


def total(store: MetricStore, res: str, metric: str) -> float:
    """A counter's sum over every point of every series of ``metric`` of a database."""
    series = [dims for m, dims in store.series(res) if m == metric]
    return sum(v for d in series for _, v in store.points(Series(res, metric, d)))


def test_counters_survive_a_primary_killed_and_a_failover(
    service: AmrService, store: MetricStore, nocluster: redis.Redis
) -> None:
    res = resource(service, "nc")
    nodes = database_nodes(service, "nc")
    [primary] = [n for n in nodes if node_role(service, n) == "master"]
    [replica] = [n for n in nodes if n != primary]
    os.kill(service.node_pids()[primary], signal.SIGKILL)
    wait_until(lambda: node_role(service, replica) == "master", 60, what="the replica's promotion")
    wait_until(nocluster.ping, 30, what="the database answers again")
    # The collector saw the shard's primary change.
    wait_until(
        lambda: store.points(Series(res, "errors", (replica, "Failover"))), 20, what="a Failover error"
    )
    # The killed node comes back (the supervisor restarts it, as a replica): a new run_id.
    wait_until(lambda: node_role(service, primary) == "slave", 60, what="the old primary rejoins")
    assert traffic_window(store, res, nocluster, 80, 20) == truth(80, 80, 20)
    # Nothing went negative at the restart.
    for metric in COUNTED:
        assert all(v >= 0 for _, v in store.points(Series(res, metric)))


def test_collection_goes_on_without_the_api_and_a_stop_is_a_gap(
    service: AmrService, store: MetricStore, nocluster: redis.Redis
) -> None:
    res = resource(service, "nc")
    supervisor = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)
    supervisor.call_sync("stopProcess", "api", True)
    try:
        assert traffic_window(store, res, nocluster, 30, 5) == truth(30, 30, 5)
    finally:
        supervisor.call_sync("startProcess", "api", True)
    # amr stop / amr serve: the history stays, and the time amr was stopped has no points at all.
    before = last_point(store, res, "totalkeys")
    service.stop()
    stopped = time.time()
    time.sleep(3)  # amr is stopped for a few sample intervals
    serving = time.time()
    service.start()
    wait_until(lambda: last_point(store, res) > time.time() - 1, 60, what="samples after amr serve")
    for metric in ("totalcommandsprocessed", "totalkeys", "usedmemory"):
        points = store.points(Series(res, metric))
        assert [t for t, _ in points if stopped < t < serving] == [], metric
        assert any(t <= before for t, _ in points), metric


def database_nodes(service: AmrService, name: str) -> list[str]:
    """The node names of a cache's database, from the collector's watch file."""
    watch = json.loads((service.home / "monitor" / "watch.json").read_text())
    suffix = f"/redisenterprise/{name}/databases/default"
    [db] = [d for d in watch["databases"] if d["id"].lower().endswith(suffix)]
    return [n["name"] for shard in db["shards"] for n in shard["nodes"]]


def node_role(service: AmrService, name: str) -> str:
    """A node's role, asked as amr's metric user over its unix socket ("" if it does not answer)."""
    master = (service.home / "secrets" / "monitor.secret").read_text().strip()
    password = CredentialMasters(monitor=master).monitor_for(database_uid_of_node(name))
    sock = str(service.home / "run" / f"{name}.sock")
    try:
        with redis.Redis(unix_socket_path=sock, username="amr-monitor", password=password) as client:
            return str(client.info("replication")["role"])
    except redis.RedisError:
        return ""
