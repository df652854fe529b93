"""Planned maintenance without loss, with real processes: `amr redisenterprise database restart --rolling`
restarts every node of an HA database (replica, switchover, old primary) while a client writes through
the endpoint; no acknowledged write is lost, every node runs a new process, and the database serves
afterwards with a replica in sync. A restart requested while another operation runs gets 409."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from typing import Any

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until
from tests.integration.ha_load import Writer, admin_password, missing_writes

_RETRY_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def _db_args(name: str) -> tuple[str, ...]:
    return ("--cluster-name", name, "-g", "rg")


def _create(service: AmrService, name: str, policy: str) -> tuple[int, str]:
    service.amr_json(
        "redisenterprise", "create", *_db_args(name), "-l", "eastus", "--sku", "Balanced_B0",
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
    )  # fmt: skip
    port = service.amr_json("redisenterprise", "database", "show", *_db_args(name))["properties"]["port"]
    key = service.amr_json("redisenterprise", "database", "list-keys", *_db_args(name))["primaryKey"]
    return int(port), str(key)


def _admin(service: AmrService, socket: str) -> redis.Redis:
    password = admin_password(service.home, socket)
    return redis.Redis(
        unix_socket_path=socket, username="amr-admin", password=password, socket_timeout=5,
        decode_responses=True,
    )  # fmt: skip


def _sockets(service: AmrService, port: int) -> list[str]:
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    return list(route["candidates"])


def _node(socket: str) -> str:
    return socket.rsplit("/", 1)[1].removesuffix(".sock")


def _pids(service: AmrService, uid_prefix: str) -> dict[str, int]:
    return {n: p for n, p in service.node_pids().items() if n.startswith(uid_prefix)}


def _client(service: AmrService, port: int, key: str, policy: str) -> Any:
    """A client that retries as applications should: backoff, and a new connection after a
    connection error (the gateway closes connections to a primary that handed over)."""
    common: dict[str, Any] = {
        "password": key, "ssl": True, "ssl_ca_certs": service.ca_file, "socket_timeout": 2,
        "socket_connect_timeout": 2, "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.005), 10, supported_errors=_RETRY_ERRORS),
    }  # fmt: skip
    if policy == "OSSCluster":
        # Cluster-aware: it follows the slots to the node ports the gateway announces.
        return redis.RedisCluster("localhost", port, **common)
    return redis.Redis("localhost", port, retry_on_error=list(_RETRY_ERRORS), **common)


def _in_sync(service: AmrService, sockets: list[str]) -> tuple[str, str] | None:
    """(primary, replica) sockets once the shard has one primary with its replica online and caught up."""
    infos = {s: _admin(service, s).info("replication") for s in sockets}
    primaries = [s for s, i in infos.items() if i["role"] == "master"]
    if len(primaries) != 1:
        return None
    (primary,) = primaries
    (replica,) = [s for s in sockets if s != primary]
    p, r = infos[primary], infos[replica]
    ok = (
        p["connected_slaves"] == 1
        and r["master_link_status"] == "up"
        and r["slave_repl_offset"] >= p["master_repl_offset"]
    )
    return (primary, replica) if ok else None


def _events(service: AmrService, name: str) -> list[dict[str, Any]]:
    listed = service.amr_json("redisenterprise", "database", "events", *_db_args(name))
    return [e["properties"] for e in listed]


@pytest.mark.parametrize("policy", ["NoCluster", "OSSCluster"])
def test_rolling_restart_loses_no_acknowledged_write(service: AmrService, policy: str) -> None:
    name = f"rr{policy.lower()}"
    port, key = _create(service, name, policy)
    sockets = _sockets(service, port)
    uid = _node(sockets[0]).rsplit("-", 2)[0]
    before_primary, _ = wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync")
    pids_before = _pids(service, uid)
    assert len(pids_before) == 2

    writer = Writer(_client(service, port, key, policy))
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= 200, 20, what="writes before the restart")
        started = time.monotonic()
        result = service.amr(
            "redisenterprise", "database", "restart", *_db_args(name), "--rolling", timeout=180
        )
        ended = time.monotonic()
        assert result.returncode == 0, result.stderr + result.stdout
        status = json.loads(result.stdout)
        acked_during = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= acked_during + 200, 20, what="writes after the restart")
    finally:
        writer.stop.set()
        thread.join(10)
    gap, gap_at = writer.longest_gap(started, ended)
    print(
        f"\n{policy}: rolling restart took {(ended - started) * 1000:.0f} ms (CLI included); longest write "
        f"gap {gap * 1000:.0f} ms ({gap_at * 1000:.0f} ms in); {len(writer.acked)} writes acknowledged; "
        f"retried errors: {sorted(set(writer.errors))} ({len(writer.errors)})"
    )
    for event in _events(service, name):
        print(f"  {event['time']} {event['kind']} {event.get('node')}: {event['cause']}")
    assert status["status"] == "Succeeded"
    assert "kept serving" in status["properties"]["message"]

    # Zero acknowledged writes lost: every key the client saw acknowledged reads back.
    reader = _client(service, port, key, policy)
    assert missing_writes(reader, writer.acked) == []

    # Every node runs a new process; the roles switched; a replica is in sync.
    pids_after = _pids(service, uid)
    assert set(pids_after) == set(pids_before)
    assert all(pids_after[n] != pids_before[n] for n in pids_before), (pids_before, pids_after)
    primary, replica = wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync afterwards")
    assert primary != before_primary
    assert reader.set("after", "1") and reader.get("after") == "1"

    # The history tells each node restart and the switchover, and nothing as a crash or failover.
    events = [e for e in _events(service, name) if e["kind"] in ("restart", "switchover", "failover")]
    assert [(e["kind"], e["node"]) for e in events] == [
        ("restart", _node(primary)),  # the replica first, which then took over
        ("switchover", _node(primary)),
        ("restart", _node(before_primary)),
    ], events
    assert all("rolling restart" in e["cause"] for e in events)
    assert events[1]["oldPrimary"] == _node(before_primary) and events[1]["newPrimary"] == _node(primary)
    assert (
        service.amr_json("redisenterprise", "database", "show", *_db_args(name))["properties"][
            "provisioningState"
        ]
        == "Succeeded"
    )
    service.amr("redisenterprise", "delete", *_db_args(name), "--yes", check=True)


def test_a_restart_while_another_runs_gets_409_and_nothing_is_half_done(service: AmrService) -> None:
    name = "rrconflict"
    port, key = _create(service, name, "NoCluster")
    sockets = _sockets(service, port)
    uid = _node(sockets[0]).rsplit("-", 2)[0]
    wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync")
    pids_before = _pids(service, uid)
    client = _client(service, port, key, "NoCluster")
    # Some data, so that each full sync of a restarted node takes a moment.
    pipe = client.pipeline(transaction=False)
    for i in range(20000):
        pipe.set(f"d{i}", "x" * 1000)
    pipe.execute()
    _, replica = wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync with the data")
    http = service.http()
    db_path = service.cluster_path("rg", name) + "/databases/default"

    # A replica slow to answer for a few seconds keeps the first restart running while others are tried.
    _admin(service, replica).execute_command("CLIENT", "PAUSE", 4000, "ALL")
    first = service.amr("redisenterprise", "database", "restart", *_db_args(name), "--rolling", "--no-wait")
    assert first.returncode == 0, first.stderr
    second = service.amr("redisenterprise", "database", "restart", *_db_args(name), "--rolling")
    assert second.returncode != 0
    assert "Conflict" in second.stderr and "rolling restart" in second.stderr, second.stderr
    # The API refuses every other change meanwhile, with an ARM error.
    attempts = [
        ("POST", db_path + "/upgradeDBRedisVersion", None),
        ("PATCH", db_path, {"properties": {"evictionPolicy": "AllKeysLRU"}}),
        ("POST", db_path + "/flush", None),
        ("DELETE", db_path, None),
    ]
    for method, path, body in attempts:
        r = http.request(method, path, params={"api-version": "2025-07-01"}, json=body)
        assert r.status_code == 409, (method, path, r.text)
        assert r.json()["error"]["code"] == "Conflict"

    # The first restart finishes on its own; then other operations are accepted again.
    def restarted() -> bool:
        kinds = [e["kind"] for e in _events(service, name)]
        return kinds.count("restart") >= 2 and "switchover" in kinds

    wait_until(restarted, 60, interval=0.5, what="the first restart to finish")
    wait_until(
        lambda: (
            service.amr(
                "redisenterprise", "database", "update", *_db_args(name), "--eviction-policy", "AllKeysLRU"
            ).returncode
            == 0
        ),
        30,
        interval=0.5,
        what="an update accepted after the restart",
    )
    # Nothing half-done: each node restarted exactly once (by the first restart), one switchover, the
    # data is there and a replica is in sync.
    events = [e["kind"] for e in _events(service, name) if e["kind"] in ("restart", "switchover", "failover")]
    assert events == ["restart", "switchover", "restart"]
    pids_after = _pids(service, uid)
    assert all(pids_after[n] != pids_before[n] for n in pids_before)
    wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync afterwards")
    assert client.dbsize() == 20000
    settings = service.amr_json("redisenterprise", "database", "show", *_db_args(name))["properties"]
    assert settings["evictionPolicy"] == "AllKeysLRU" and settings["provisioningState"] == "Succeeded"
    service.amr("redisenterprise", "delete", *_db_args(name), "--yes", check=True)


def _api_pid(service: AmrService) -> int:
    sock = service.home / "supervisor" / "supervisor.sock"
    info = SupervisorClient(sock, timeout=5).call_sync("getProcessInfo", "api")
    return int(info["pid"]) if info["statename"] == "RUNNING" else 0


def _exe(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def test_a_new_engine_binary_in_the_settings_is_rolled_out_without_loss(service: AmrService) -> None:
    """engine.server_binary names a new engine and `amr reload` restarts the control plane: it moves
    every node onto it by a rolling upgrade of its own, while a client writes; upgradeDBRedisVersion
    does the same on demand."""
    name = "rrupgrade"
    port, key = _create(service, name, "NoCluster")
    sockets = _sockets(service, port)
    uid = _node(sockets[0]).rsplit("-", 2)[0]
    wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync")
    pids_before = _pids(service, uid)
    old_binary = _exe(next(iter(pids_before.values())))

    writer = Writer(_client(service, port, key, "NoCluster"))
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= 200, 20, what="writes before the upgrade")
        # A "new version" of the engine, named in amr.toml, read by the control plane at `amr reload`.
        new_binary = service.home.parent / "engine-next" / "valkey-server"
        new_binary.parent.mkdir()
        shutil.copy2(old_binary, new_binary)
        with open(service.home / "amr.toml", "a") as f:
            f.write(f'\n[engine]\nserver_binary = "{new_binary}"\n')
        started = time.monotonic()
        service.amr("reload", check=True)

        def upgraded() -> bool:
            pids = _pids(service, uid)
            return len(pids) == 2 and {_exe(pid) for pid in pids.values()} == {str(new_binary)}

        wait_until(upgraded, 60, interval=0.2, what="every node on the new binary")
        wait_until(lambda: _in_sync(service, sockets), 20, what="replica in sync afterwards")
        ended = time.monotonic()
        acked_during = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= acked_during + 200, 20, what="writes after the upgrade")
    finally:
        writer.stop.set()
        thread.join(10)
    gap, _ = writer.longest_gap(started, ended)
    print(
        f"\nautomatic upgrade: took {(ended - started) * 1000:.0f} ms; longest write gap {gap * 1000:.0f} ms"
    )
    assert missing_writes(_client(service, port, key, "NoCluster"), writer.acked) == []
    pids_after = _pids(service, uid)
    assert all(pids_after[n] != pids_before[n] for n in pids_before)
    events = [e for e in _events(service, name) if e["kind"] in ("restart", "switchover", "failover")]
    assert [e["kind"] for e in events] == ["restart", "switchover", "restart"]
    assert all(e["cause"].startswith("upgrade:") for e in events)

    # On demand, as Azure's upgradeDBRedisVersion: the same rolling procedure, a 202 operation.
    result = service.amr("redisenterprise", "database", "upgrade-db-redis-version", *_db_args(name))
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["properties"]["message"].startswith("Upgraded")
    assert {_exe(pid) for pid in _pids(service, uid).values()} == {str(new_binary)}
    service.amr("redisenterprise", "delete", *_db_args(name), "--yes", check=True)
