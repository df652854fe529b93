"""Sentinel fails over non-clustered HA databases, with real processes: the host's Sentinel monitors a
new database at its primary, promotes the replica when the primary stops (with the control plane
running, and with it stopped), clients write through the same endpoint again, the old primary comes
back as a replica of the new one, and a deleted database leaves Sentinel before its nodes stop."""

from __future__ import annotations

import json
import stat
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.logic.sentinel_plan import ObservedMonitor, parse_sentinel_masters, parse_sentinel_timings
from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until

INTERNAL_HOST = "127.0.0.2"
KEYS = 200


# --- helpers ----------------------------------------------------------------------------------------


def _secret(service: AmrService) -> str:
    return (service.home / "secrets" / "admin.secret").read_text().strip()


def _admin(service: AmrService, socket: str) -> redis.Redis:
    return redis.Redis(
        unix_socket_path=socket, username="amr-admin", password=_secret(service), socket_timeout=2,
        decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _client(service: AmrService, port: int, key: str) -> redis.Redis:
    return redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=service.ca_file, socket_timeout=2,
        socket_connect_timeout=2, decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _sentinel(service: AmrService, *args: str) -> Any:
    """One SENTINEL command on the host's Sentinel."""
    sentinel = redis.Redis(
        unix_socket_path=str(service.home / "sentinel" / "sentinel.sock"), socket_timeout=2
    )
    try:
        return sentinel.execute_command("SENTINEL", *args)
    finally:
        sentinel.close()


def _monitors(service: AmrService) -> dict[str, ObservedMonitor]:
    return parse_sentinel_masters(_sentinel(service, "MASTERS"))


def _supervisor(service: AmrService) -> SupervisorClient:
    return SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)


def _start_program(service: AmrService, program: str) -> None:
    try:
        _supervisor(service).call_sync("startProcess", program, True)
    except xmlrpc.client.Fault as e:
        if "ALREADY_STARTED" not in e.faultString:
            raise


def _node(socket: str) -> str:
    return Path(socket).name.removesuffix(".sock")


def _uid(socket: str) -> str:
    return _node(socket).rsplit("-", 2)[0]


def _role(service: AmrService, socket: str) -> dict[str, Any]:
    return dict(_admin(service, socket).info("replication"))


def _port(service: AmrService, socket: str) -> int:
    return int(_admin(service, socket).info("server")["tcp_port"])


def _create(service: AmrService, name: str) -> tuple[int, str, str, str]:
    """An HA NoCluster database: its endpoint port, a key, and its primary's and replica's sockets."""
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", "--clustering-policy", "NoCluster",
    )  # fmt: skip
    cache = service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
    assert cache["properties"]["highAvailability"] == "Enabled"
    show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    key = service.primary_key(name)
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == show["properties"]["port"]]
    primary, replica = route["candidates"]
    assert primary == route["target"]
    return int(show["properties"]["port"]), str(key), primary, replica


def _monitored_at(service: AmrService, uid: str, port: int) -> bool:
    seen = _monitors(service).get(f"amr-{uid}")
    return seen is not None and (seen.host, seen.port) == (INTERNAL_HOST, port)


def _in_sync(service: AmrService, socket: str, primary_port: int) -> bool:
    info = _role(service, socket)
    return (
        info.get("role") == "slave"
        and int(info.get("master_port", 0)) == primary_port
        and info.get("master_link_status") == "up"
    )


def _first_write(service: AmrService, port: int, key: str, deadline: float) -> float:
    """Write through the endpoint with a new connection each attempt until one is acknowledged; return
    when. Errors while the failover runs (connection refused or closed, READONLY) are retried."""
    while time.monotonic() < deadline:
        try:
            _client(service, port, key).set("after-failover", "1")
            return time.monotonic()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            time.sleep(0.02)
    raise AssertionError("no write through the endpoint succeeded after the primary stopped")


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("control_plane", ["running", "stopped"])
def test_sentinel_promotes_the_replica_when_the_primary_stops(
    service: AmrService, control_plane: str
) -> None:
    name = f"sent{control_plane[:4]}"
    port, key, old, new = _create(service, name)
    uid = _uid(old)
    old_port, new_port = _port(service, old), _port(service, new)
    wait_until(lambda: _monitored_at(service, uid, old_port), 15, what="Sentinel monitors the primary")
    wait_until(lambda: _in_sync(service, new, old_port), 20, what="the replica in sync")

    client = _client(service, port, key)
    for i in range(KEYS):
        client.set(f"k{i}", str(i))
    wait_until(lambda: _admin(service, new).dbsize() >= KEYS, 10, what="the writes on the replica")

    supervisor = _supervisor(service)
    if control_plane == "stopped":
        supervisor.call_sync("stopProcess", "api", True)
    try:
        # A stop the supervisor does not undo (a kill would be restarted at once).
        stopped = time.monotonic()
        supervisor.call_sync("stopProcess", f"node-{_node(old)}", True)
        written = _first_write(service, port, key, stopped + 30)
        print(
            f"\ncontrol plane {control_plane}: first write through the endpoint "
            f"{written - stopped:.2f} s after the primary was stopped"
        )
        assert _role(service, new)["role"] == "master"
        assert int(_client(service, port, key).info("server")["tcp_port"]) == new_port
        # Every write acknowledged before the stop is on the new primary.
        assert _client(service, port, key).mget([f"k{i}" for i in range(KEYS)]) == [
            str(i) for i in range(KEYS)
        ]
        wait_until(
            lambda: _monitored_at(service, uid, new_port), 15, what="Sentinel monitors the new primary"
        )

        # Started again (by the control plane, if it runs, or here), the old primary comes back as a
        # replica of the new one: it waits for the promotion, or Sentinel converts it.
        _start_program(service, f"node-{_node(old)}")
        wait_until(
            lambda: _in_sync(service, old, new_port), 45, interval=0.2, what="the old primary as replica"
        )
        wait_until(
            lambda: _admin(service, old).dbsize() == _admin(service, new).dbsize(), 10, what="resynced"
        )
        assert _monitored_at(service, uid, new_port)
        assert _role(service, new)["role"] == "master"
    finally:
        if control_plane == "stopped":
            _start_program(service, "api")
            wait_until(lambda: service.amr("group", "show", "-n", "rg").returncode == 0, 30, what="API back")

    # The control plane keeps the new roles and the monitor where Sentinel put them.
    def healthy() -> bool:
        show = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
        return bool(show["properties"]["provisioningState"] == "Succeeded")

    wait_until(healthy, 30, what="the database reported healthy")
    assert _monitored_at(service, uid, new_port)
    assert _role(service, new)["role"] == "master"
    service.amr("redisenterprise", "delete", "--cluster-name", name, "-g", "rg", "--yes", check=True)


def test_a_switchover_outside_sentinel_moves_the_monitor(service: AmrService) -> None:
    _, _, old, new = _create(service, "sentswitch")
    uid = _uid(old)
    old_port, new_port = _port(service, old), _port(service, new)
    wait_until(lambda: _monitored_at(service, uid, old_port), 15, what="Sentinel monitors the primary")
    wait_until(lambda: _in_sync(service, new, old_port), 20, what="the replica in sync")
    _admin(service, old).execute_command("FAILOVER")
    wait_until(lambda: _role(service, new)["role"] == "master", 10, what="the engine switches")
    wait_until(lambda: _monitored_at(service, uid, new_port), 15, what="the monitor follows the switchover")
    # Sentinel neither switches back nor fails over the replica it now sees.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert _role(service, new)["role"] == "master"
        assert _role(service, old)["role"] == "slave"
        time.sleep(0.25)
    log = (service.home / "logs" / "sentinel.log").read_text()
    assert f"+try-failover master amr-{uid}" not in log
    service.amr("redisenterprise", "delete", "--cluster-name", "sentswitch", "-g", "rg", "--yes", check=True)


def test_deleting_a_database_removes_its_monitor_first(service: AmrService) -> None:
    _, _, primary, _ = _create(service, "sentdel")
    uid = _uid(primary)
    wait_until(lambda: f"amr-{uid}" in _monitors(service), 15, what="Sentinel monitors the database")
    service.amr("redisenterprise", "delete", "--cluster-name", "sentdel", "-g", "rg", "--yes", check=True)
    assert f"amr-{uid}" not in _monitors(service)
    log = (service.home / "logs" / "sentinel.log").read_text()
    assert f"-monitor master amr-{uid}" in log
    # Its nodes stopped after the monitor was gone: Sentinel never saw them down.
    assert f"+sdown master amr-{uid}" not in log


def test_sentinel_runs_privately_and_keeps_its_state(service: AmrService) -> None:
    _, _, primary, _ = _create(service, "sentstate")
    uid = _uid(primary)
    wait_until(lambda: f"amr-{uid}" in _monitors(service), 15, what="Sentinel monitors the database")
    sentinel_dir = service.home / "sentinel"
    conf = sentinel_dir / "sentinel.conf"
    assert stat.S_IMODE(sentinel_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # it holds the admin secret (auth-pass)
    assert stat.S_IMODE((sentinel_dir / "sentinel.sock").stat().st_mode) == 0o700
    text = conf.read_text()
    assert "port 0" in text.splitlines()
    assert f"sentinel monitor amr-{uid} {INTERNAL_HOST}" in text
    # The secret is in no log and no process list.
    secret = _secret(service)
    for log in (service.home / "logs").glob("*.log"):
        assert secret not in log.read_text(errors="replace"), log
    for pid in service.pids_under_home():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert secret not in cmdline
    # A restarted Sentinel still monitors what it did (its state is in its own config).
    supervisor = _supervisor(service)
    pid = int(supervisor.call_sync("getProcessInfo", "sentinel")["pid"])
    supervisor.call_sync("stopProcess", "sentinel", True)
    supervisor.call_sync("startProcess", "sentinel", True)
    assert int(supervisor.call_sync("getProcessInfo", "sentinel")["pid"]) != pid
    wait_until(lambda: f"amr-{uid}" in _monitors(service), 5, what="the monitor after a restart")
    service.amr("redisenterprise", "delete", "--cluster-name", "sentstate", "-g", "rg", "--yes", check=True)


def test_a_sentinel_restarted_while_the_control_plane_is_down_gets_its_short_periods_back(
    service: AmrService,
) -> None:
    """Sentinel forgets SENTINEL DEBUG periods when it restarts; `amr ha` sets them again, API or not."""

    def periods() -> dict[str, int]:
        return parse_sentinel_timings(_sentinel(service, "DEBUG"))

    wait_until(lambda: periods().get("info-period") == 500, 10, what="short periods")
    supervisor = _supervisor(service)
    supervisor.call_sync("stopProcess", "api", True)
    try:
        supervisor.call_sync("stopProcess", "sentinel", True)
        supervisor.call_sync("startProcess", "sentinel", True)
        wait_until(
            lambda: periods() == {**periods(), "info-period": 500, "ping-period": 250},
            10,
            what="amr ha to shorten the restarted Sentinel's periods",
        )
    finally:
        _start_program(service, "api")
