"""Scaling an OSSCluster database with real processes: a PATCH of sku.name changes the shard count
(1 -> 2 -> 4 -> 1 with engine.max_shards_per_database = 4) while a RedisCluster client over TLS keeps
writing and reading; slots migrate live, no acknowledged write is lost and no wrong value is read.
The same for an EnterpriseCluster database under plain clients (GET, SET, cross-slot MGET), which
must see no error at all: the gateway follows MOVED/ASK/TRYAGAIN for them. Plus the refusals that leave the cache as it was (a second PATCH while scaling)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from amr.logic.keyspace.slots import plan_slot_ranges
from tests.integration.amr_service import FOUR_SHARDS, AmrService, running_service, wait_until
from tests.integration.ha_load import Writer, admin_client, missing_writes

API = "?api-version=2025-07-01"
PRELOAD = 20_000


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


def _cluster_client(service: AmrService, port: int, key: str) -> RedisCluster:
    return RedisCluster(
        host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file,
        decode_responses=True, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 10),
    )  # fmt: skip


class _Client:
    """A RedisCluster whose topology refresh races (redis-py raises AttributeError when a node it
    knew is gone from a new slot map) surface as a ConnectionError, which the application retries."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client

    def set(self, key: str, value: str) -> Any:
        try:
            return self._client.set(key, value)
        except AttributeError as e:
            raise redis.ConnectionError(str(e)) from e

    def get(self, key: str) -> Any:
        try:
            return self._client.get(key)
        except AttributeError as e:
            raise redis.ConnectionError(str(e)) from e


@dataclass
class Reader:
    """Reads keys the writer has had acknowledged and records every wrong answer (a missing key or
    another value): a client must never see one while slots move."""

    client: Any
    writer: Writer
    wrong: list[str] = field(default_factory=list)
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.is_set():
            acked = self.writer.acked
            if not acked:
                self.stop.wait(0.01)
                continue
            i = acked[rng.randrange(len(acked))]
            try:
                value = self.client.get(f"k{i}")
            except redis.RedisError as e:
                self.errors.append(type(e).__name__)
                self.stop.wait(0.01)
                continue
            self.reads += 1
            if value != str(i):
                self.wrong.append(f"k{i}={value!r}")

    def start(self) -> Reader:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(10)


def _state(service: AmrService, name: str) -> dict[str, Any]:
    response = service.http().get(service.cluster_path("rg", name) + API)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _patch_sku(service: AmrService, name: str, sku: str) -> Any:
    return service.http().patch(service.cluster_path("rg", name) + API, json={"sku": {"name": sku}})


def test_scaling_out_and_in_keeps_every_write_while_a_cluster_client_reads_and_writes(
    service: AmrService,
) -> None:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "sc", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B1", "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "sc", "-g", "rg")
    port = db["properties"]["port"]
    assert db["properties"]["shardCount"] == 1
    key = service.primary_key("sc")
    loader = _cluster_client(service, port, key)
    pipe = loader.pipeline()
    for i in range(PRELOAD):
        pipe.set(f"pre{i}", str(i))
    pipe.execute()

    writer = Writer(_Client(_cluster_client(service, port, key)), pause=0.001).start()
    reader = Reader(_Client(_cluster_client(service, port, key)), writer).start()
    try:
        for sku, shards in (("Balanced_B3", 2), ("Balanced_B20", 4), ("Balanced_B1", 1)):
            before = service.node_pids()
            writes, reads = len(writer.acked), reader.reads
            response = _patch_sku(service, "sc", sku)
            assert response.status_code == 202, response.text
            assert response.json()["properties"]["resourceState"] == "Scaling"
            assert _state(service, "sc")["properties"]["resourceState"] == "Scaling"

            # A second change while this one runs: 409, and the cache keeps the SKU it is scaling to.
            again = _patch_sku(service, "sc", "Balanced_B5")
            assert again.status_code == 409, again.text
            assert again.json()["error"]["code"] == "Conflict"
            assert _state(service, "sc")["sku"]["name"] == sku

            done = wait_until(
                lambda: _state(service, "sc")["properties"]["provisioningState"] == "Succeeded",
                90,
                interval=0.2,
                what=f"scaling to {sku}",
            )
            assert done
            props = _state(service, "sc")["properties"]
            assert props["resourceState"] == "Running"
            db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "sc", "-g", "rg")
            assert db["properties"]["shardCount"] == shards

            check = _cluster_client(service, port, key)
            assert sorted(check.execute_command("CLUSTER SLOTS")) == plan_slot_ranges(shards)
            assert missing_writes(check, writer.acked) == []
            pipe = check.pipeline()
            for i in range(PRELOAD):
                pipe.get(f"pre{i}")
            assert [i for i, v in enumerate(pipe.execute()) if v != str(i)] == []
            assert reader.wrong == []
            # Both kept working through the step (their threads never stop on an error).
            assert len(writer.acked) > writes and reader.reads > reads

            after = service.node_pids()
            assert len(after) == shards * 2  # a primary and a replica per shard
            for gone in set(before) - set(after):
                assert not _alive(before[gone]), f"node {gone} removed but its process still runs"
            check.close()
            _assert_settled_settings(service, after)
        assert writer._thread is not None and writer._thread.is_alive()
        assert reader._thread is not None and reader._thread.is_alive()
    finally:
        writer.finish()
        reader.finish()


def _assert_settled_settings(service: AmrService, nodes: dict[str, int]) -> None:
    """Every node runs with the settled settings again (render_moving_slots_settings), and while
    slots moved none logged its per-slot notices (it ran at loglevel warning then)."""
    for name in nodes:
        node = admin_client(service.home, str(service.home / "run" / f"{name}.sock"))
        try:
            assert node.config_get("rdbcompression") == {"rdbcompression": "yes"}, name
            assert node.config_get("loglevel") == {"loglevel": "notice"}, name
        finally:
            node.close()
        (log,) = service.home.glob(f"nodes/*/{name}/valkey.log")
        # Only the offending lines in the message: the whole log would bury the test summary.
        notices = [line for line in log.read_text().splitlines() if "Migrating slot" in line]
        count = len(notices)
        assert count == 0, f"{name} logged {count} per-slot notices while slots moved: {notices[:3]}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_refused_changes_leave_the_cache_and_its_database_as_they_were(service: AmrService) -> None:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "ref", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B1", "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    db_path = service.cluster_path("rg", "ref") + "/databases/default" + API
    db = service.http().get(db_path).json()
    key = service.primary_key("ref")
    client = _cluster_client(service, db["properties"]["port"], key)
    # 600 MB of data: more than Balanced_B0's 0.5 GB.
    for i in range(6):
        client.set(f"big{i}", b"x" * (100 * 1024**2))
    cluster, pids = _state(service, "ref"), service.node_pids()

    for sku, code, words in (
        ("Balanced_B7", "InvalidParameter", "Allowed values"),
        ("FlashOptimized_A250", "InvalidParameter", "in-memory SKUs only"),
        ("Balanced_B0", "InvalidSkuForScaling", "do not fit"),
    ):
        r = _patch_sku(service, "ref", sku)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"]
    skus = service.http().post(service.cluster_path("rg", "ref") + "/listSkusForScaling" + API).json()["skus"]
    names = {s["name"] for s in skus}
    assert "Balanced_B0" not in names and "Balanced_B3" in names
    assert not any(n.startswith("FlashOptimized") for n in names)

    for policy in ("NoCluster", "EnterpriseCluster"):
        r = service.http().patch(db_path, json={"properties": {"clusteringPolicy": policy}})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["target"] == "properties.clusteringPolicy"
        assert "only a NoCluster database" in r.json()["error"]["message"]

    assert _state(service, "ref") == cluster
    assert service.http().get(db_path).json() == db
    assert service.node_pids() == pids
    assert client.get("big5") is not None and len(client.keys("big*")) == 6
    client.close()


@dataclass
class MultiReader(Reader):
    """Reads five acknowledged keys at once with MGET (split across shards by the gateway)."""

    def run(self) -> None:
        rng = random.Random(2)
        while not self.stop.is_set():
            acked = self.writer.acked
            if len(acked) < 5:
                self.stop.wait(0.01)
                continue
            picked = [acked[rng.randrange(len(acked))] for _ in range(5)]
            try:
                values = self.client.mget([f"k{i}" for i in picked])
            except redis.RedisError as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                self.stop.wait(0.01)
                continue
            self.reads += 1
            self.wrong += [f"k{i}={v!r}" for i, v in zip(picked, values, strict=True) if v != str(i)]


@pytest.fixture
def ec_service() -> Iterator[AmrService]:
    """A service of its own: four shards with replicas take 8 of a test service's 10 node ports."""
    yield from running_service(FOUR_SHARDS)


def test_an_enterprise_cluster_database_scales_while_a_plain_client_sees_no_error(
    ec_service: AmrService,
) -> None:
    service = ec_service
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", "ecs", "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B1", "--clustering-policy", "EnterpriseCluster",
        "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "ecs", "-g", "rg")
    port = db["properties"]["port"]
    key = service.primary_key("ecs")

    def plain() -> redis.Redis:
        return redis.Redis(
            host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file,
            decode_responses=True,
        )  # fmt: skip

    loader = plain()
    pipe = loader.pipeline(transaction=False)
    for i in range(PRELOAD):
        pipe.set(f"pre{i}", str(i))
    pipe.execute()

    writer = Writer(plain(), pause=0.001).start()
    reader = Reader(plain(), writer).start()
    multi = MultiReader(plain(), writer).start()
    try:
        for sku, shards in (("Balanced_B3", 2), ("Balanced_B20", 4), ("Balanced_B1", 1)):
            writes, reads, multis = len(writer.acked), reader.reads, multi.reads
            response = _patch_sku(service, "ecs", sku)
            assert response.status_code == 202, response.text
            wait_until(
                lambda: _state(service, "ecs")["properties"]["provisioningState"] == "Succeeded",
                90,
                interval=0.2,
                what=f"scaling to {sku}",
            )
            assert _state(service, "ecs")["properties"]["resourceState"] == "Running"
            db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "ecs", "-g", "rg")
            assert db["properties"]["shardCount"] == shards
            assert len(service.node_pids()) == shards * 2
            # The plain client saw no error at all: no MOVED, ASK, TRYAGAIN or closed connection.
            assert writer.errors == [] and reader.errors == [] and multi.errors == []
            assert reader.wrong == [] and multi.wrong == []
            assert len(writer.acked) > writes and reader.reads > reads and multi.reads > multis
            check = plain()
            assert missing_writes(check, writer.acked) == []
            values = check.mget([f"pre{i}" for i in range(PRELOAD)])
            assert [i for i, v in enumerate(values) if v != str(i)] == []
            acked = len(writer.acked)  # the writer goes on: DBSIZE (summed over shards) can only be more
            assert PRELOAD + acked <= check.dbsize() <= PRELOAD + acked + 50
            check.close()
    finally:
        writer.finish()
        reader.finish()
        multi.finish()
