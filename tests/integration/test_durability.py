"""Persistence and recovery with real processes: persistence switched live on primary and replica,
kill -9 of every process of an AMR_HOME then `amr serve`, a clean `amr stop` per persistence mode,
leftovers of a killed supervisor (orphaned nodes, stray node directories, a node unregistered behind
amr's back), and a rejected persistence change that leaves the nodes alone."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.nodes.supervisor import SupervisorClient
from tests.integration.amr_service import AmrService, wait_until


def _create(service: AmrService, cluster: str, *extra: str) -> None:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", cluster, "-g", "rg", "-l", "eastus",
        "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled", *extra,
    )  # fmt: skip


def _update_persistence(service: AmrService, cluster: str, *words: str) -> Any:
    return service.amr_json(
        "redisenterprise",
        "database",
        "update",
        "--cluster-name",
        cluster,
        "-g",
        "rg",
        "--persistence",
        *words,
    )


def _db(service: AmrService, cluster: str) -> Any:
    return service.amr_json("redisenterprise", "database", "show", "--cluster-name", cluster, "-g", "rg")


def _keys(service: AmrService, cluster: str) -> Any:
    return service.amr_json("redisenterprise", "database", "list-keys", "--cluster-name", cluster, "-g", "rg")


def _client(service: AmrService, port: int, key: str, timeout: float = 5) -> redis.Redis:
    return redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=service.ca_file, socket_timeout=timeout,
        single_connection_client=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _node_client(service: AmrService, node: str, key: str) -> redis.Redis:
    """The data-plane user on a node's own unix socket (to see a replica, which the endpoint hides)."""
    return redis.Redis(
        unix_socket_path=str(service.home / "run" / f"{node}.sock"), password=key, socket_timeout=5
    )


def _node_dirs(service: AmrService, uid: str) -> list[Path]:
    return sorted((service.home / "nodes" / uid).iterdir())


def _conf(node_dir: Path) -> list[str]:
    return (node_dir / "valkey.conf").read_text().splitlines()


def _uid(service: AmrService) -> str:
    """The database uid (its node directory) of a home with one database."""
    (db_dir,) = [d for d in (service.home / "nodes").iterdir() if d.is_dir()]
    return db_dir.name


def test_persistence_switches_live_on_primary_and_replica_without_restarts() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create(service, "c1", "--clustering-policy", "NoCluster")  # HA on: a primary and a replica
        port = _db(service, "c1")["properties"]["port"]
        key = _keys(service, "c1")["primaryKey"]
        uid = _uid(service)
        nodes = [d.name for d in _node_dirs(service, uid)]
        assert len(nodes) == 2
        pids = service.node_pids()
        client = _client(service, port, key)
        for i in range(2000):
            client.set(f"k{i}", "v" * 100)
        for node in nodes:  # the replica's initial sync may still run when the create completes
            wait_until(
                lambda node=node: _node_client(service, node, key).dbsize() == 2000, 10, what="replication"
            )

        steps: list[tuple[tuple[str, ...], dict[str, Any], dict[str, str]]] = [
            (("aof-enabled=true", "aof-frequency=1s"), {"aof_enabled": 1},
             {"appendonly": "yes", "appendfsync": "everysec", "save": '""'}),
            (("aof-frequency=always",), {"aof_enabled": 1}, {"appendonly": "yes", "appendfsync": "always"}),
            (("aof-enabled=false", "rdb-enabled=true", "rdb-frequency=1h"), {"aof_enabled": 0},
             {"appendonly": "no", "save": '"3600 1"'}),
            (("rdb-frequency=6h",), {"aof_enabled": 0}, {"save": '"21600 1"'}),
            (("rdb-frequency=12h",), {"aof_enabled": 0}, {"save": '"43200 1"'}),
            (("rdb-enabled=false", "aof-enabled=true", "aof-frequency=1s"), {"aof_enabled": 1},
             {"appendonly": "yes", "save": '""'}),
            (("aof-enabled=false",), {"aof_enabled": 0}, {"appendonly": "no", "save": '""'}),
        ]  # fmt: skip
        for words, info_expected, conf_expected in steps:
            before = time.time()
            db = _update_persistence(service, "c1", *words)
            assert db["properties"]["provisioningState"] == "Succeeded", db
            for node in nodes:
                info = _node_client(service, node, key).info("persistence")
                for field_, value in info_expected.items():
                    assert info[field_] == value, (words, node, field_, info)
                # The operation completed only once the engine had the mode in force.
                assert info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0, (
                    words,
                    info,
                )
                assert info["rdb_bgsave_in_progress"] == 0, (words, info)
                if words[-1] == "aof-frequency=1s" and words[0] != "aof-enabled=false":
                    # Switching AOF on rewrote it with the whole dataset (the base file on disk).
                    aof_dir = service.home / "nodes" / uid / node / "appendonlydir"
                    base = max(aof_dir.glob("*.base.rdb"), key=lambda f: f.stat().st_mtime)
                    assert info["aof_rewrites"] >= 1 and base.stat().st_size > 2000 * 10, (node, info)
                if "rdb-enabled=true" in words:
                    # Switching RDB on took a snapshot at once, not an hour later.
                    assert info["rdb_last_save_time"] >= int(before) - 1, info
                conf = dict(
                    line.split(" ", 1) for line in _conf(service.home / "nodes" / uid / node) if " " in line
                )
                for name, value in conf_expected.items():
                    assert conf[name] == value, (words, node, name, conf[name])
            assert client.get("k1999") == b"v" * 100
        assert service.node_pids() == pids  # every switch applied live
        client.close()
    finally:
        service.destroy()


@dataclass
class Writer:
    """Writes k:0, k:1, ... through the endpoint and records which writes were acknowledged, when."""

    client: redis.Redis
    acked: list[tuple[int, float]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.client.set(f"k:{i}", i)
            except BaseException as e:  # noqa: BLE001 - the kill ends every writer
                self.error = e
                return
            self.acked.append((i, time.monotonic()))
            i += 1


def _kill_everything(service: AmrService) -> list[int]:
    """SIGKILL every process of the home, the supervisor first so it restarts nothing meanwhile."""
    killed: list[int] = []
    supervisord = int((service.home / "supervisor" / "logs" / "supervisord.pid").read_text())
    os.kill(supervisord, signal.SIGKILL)
    killed.append(supervisord)
    for _ in range(5):  # a child spawned in between is caught by the next pass
        pids = [p for p in service.pids_under_home() if p not in killed]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed += pids
        if not pids:
            break
    wait_until(lambda: not _live(service), 10, what="every process of the home to die")
    return killed


def _live(service: AmrService) -> list[int]:
    out = []
    for pid in service.pids_under_home():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def _set_after(client: redis.Redis) -> bool:
    try:
        return client.set("after", 1) is True
    except redis.ClusterDownError:
        return False


def _wait_answers(service: AmrService, port: int, key: str) -> redis.Redis:
    def answers() -> redis.Redis | None:
        client = _client(service, port, key)
        try:
            client.ping()
            return client
        except redis.RedisError:
            client.close()
            return None

    result: redis.Redis = wait_until(answers, 60, interval=0.2, what=f"database on port {port}")
    return result


def test_kill_9_of_everything_then_serve_keeps_what_persistence_promises() -> None:
    service = AmrService().start()
    writers: list[Writer] = []
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        plans = {
            "always": ("--clustering-policy", "NoCluster", "--high-availability", "Disabled",
                       "--persistence", "aof-enabled=true", "aof-frequency=always"),
            "onesec": ("--clustering-policy", "NoCluster", "--high-availability", "Disabled",
                       "--persistence", "aof-enabled=true", "aof-frequency=1s"),
            "onesec-ha": ("--persistence", "aof-enabled=true", "aof-frequency=1s"),  # OSSCluster, HA
            "none-ha": (),  # OSSCluster with a replica, no persistence
        }  # fmt: skip
        for name, extra in plans.items():
            _create(service, name, *extra)
        dbs = {name: (_db(service, name)["properties"]["port"], _keys(service, name)) for name in plans}
        before = {name: service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
                  for name in plans}  # fmt: skip

        threads = []
        for port, keys in dbs.values():
            writer = Writer(_client(service, port, keys["primaryKey"], timeout=2))
            writers.append(writer)
            threads.append(threading.Thread(target=writer.run, daemon=True))
        for t in threads:
            t.start()
        wait_until(lambda: all(len(w.acked) > 3000 for w in writers), 60, what="a steady write load")
        killed = _kill_everything(service)
        for t in threads:
            t.join(10)
        assert len(killed) >= 3 + 6, killed  # supervisord, api, gateway and 6 nodes

        service.start()
        for (name, (port, keys)), writer in zip(dbs.items(), writers, strict=True):
            client = _wait_answers(service, port, keys["primaryKey"])
            assert _keys(service, name) == keys
            shown = service.amr_json("redisenterprise", "show", "--cluster-name", name, "-g", "rg")
            assert shown["properties"]["hostName"] == before[name]["properties"]["hostName"]
            acked = [i for i, _ in writer.acked]
            present = {int(k.split(b":")[1]) for k in client.scan_iter("k:*", count=10000)}
            lost = [i for i in acked if i not in present]
            window = writer.acked[-1][1] - writer.acked[lost[0]][1] if lost else 0.0
            print(
                f"{name}: {len(acked)} writes acknowledged, {len(lost)} lost (last {window:.3f} s of writes)"
            )
            if name == "always":
                assert not lost
            elif name.startswith("onesec"):
                assert lost == acked[len(acked) - len(lost) :]  # only the newest writes, if any
                assert window <= 1.5, window
            else:
                assert client.dbsize() == 0  # no persistence: back empty, but serving
                # A cluster primary refuses writes (CLUSTERDOWN) for its first 2 s after a start
                # (the engine's writable delay), though PING already answers.
                assert wait_until(
                    functools.partial(_set_after, client), 30, interval=0.2, what="writes again"
                )
            client.close()
    finally:
        for w in writers:
            w.stop.set()
        service.destroy()


def test_clean_stop_keeps_data_with_aof_and_rdb_and_loses_it_without_persistence() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        modes = {
            "aof": ("--persistence", "aof-enabled=true", "aof-frequency=1s"),
            "rdb": ("--persistence", "rdb-enabled=true", "rdb-frequency=12h"),
            "none": (),
        }
        dbs = {}
        for name, extra in modes.items():
            _create(service, name, "--clustering-policy", "NoCluster", *extra)
            port, keys = _db(service, name)["properties"]["port"], _keys(service, name)
            client = _client(service, port, keys["primaryKey"])
            for i in range(500):
                client.set(f"k:{i}", i)
            client.close()
            dbs[name] = (port, keys)
        service.stop()
        wait_until(lambda: not service.pids_under_home(), 30, what="every process of the home to exit")
        service.start()
        kept = {}
        for name, (port, keys) in dbs.items():
            client = _wait_answers(service, port, keys["primaryKey"])
            kept[name] = client.dbsize()
            client.close()
        # AOF replays its log; RDB snapshots on shutdown (valkey saves on SIGTERM when `save` is set).
        assert kept == {"aof": 500, "rdb": 500, "none": 0}, kept
    finally:
        service.destroy()


def test_serve_after_a_killed_supervisor_stops_orphans_and_repairs_half_done_state() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create(service, "c1", "--clustering-policy", "NoCluster", "--persistence", "aof-enabled=true",
                "aof-frequency=always")  # fmt: skip
        port, keys = _db(service, "c1")["properties"]["port"], _keys(service, "c1")
        client = _client(service, port, keys["primaryKey"])
        for i in range(100):
            client.set(f"k:{i}", i)
        client.close()
        orphans = service.node_pids()
        assert len(orphans) == 2

        # Only the supervisor dies: api, gateway and nodes live on as orphans holding their ports.
        supervisord = int((service.home / "supervisor" / "logs" / "supervisord.pid").read_text())
        os.kill(supervisord, signal.SIGKILL)
        wait_until(lambda: supervisord not in _live(service), 10, what="the supervisor to die")
        assert set(orphans.values()) <= set(_live(service))

        # Half-done state left behind: a node directory and a program of a database that is gone.
        stray_dir = service.home / "nodes" / "dgone" / "dgone-0-0"
        stray_dir.mkdir(parents=True)
        (stray_dir / "appendonly.aof").write_text("stale")
        stray_program = service.home / "supervisor" / "conf.d" / "node-dgone-0-1.conf"
        stray_program.write_text(
            "[program:node-dgone-0-1]\ncommand = sleep 1000\nautostart = true\nstartsecs = 0\n"
            f"directory = {service.home}\n"
        )

        service.start()  # must not fail on ports and sockets the orphans held
        for pid in orphans.values():
            assert pid not in _live(service), "an orphaned node survived"
        client = _wait_answers(service, port, keys["primaryKey"])
        assert client.dbsize() == 100  # the orphans were stopped cleanly, then restarted from the AOF

        # The replica may still be in its launcher (joining the private network, asking its peer).
        def both_nodes() -> dict[str, int] | None:
            nodes = service.node_pids()
            return nodes if len(nodes) == 2 else None

        new_nodes = wait_until(both_nodes, 20, what="both nodes running")
        assert not set(new_nodes.values()) & set(orphans.values())

        def strays_gone() -> bool:
            sleeping = [
                p for p in _live(service) if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep")
            ]
            return not stray_dir.parent.exists() and not stray_program.exists() and not sleeping

        wait_until(strays_gone, 30, interval=0.2, what="the stray node directory and program to be removed")

        # A node unregistered behind amr's back (its program gone) is brought back by the reconciler.
        supervisor = SupervisorClient(service.home / "supervisor" / "supervisor.sock", timeout=30)
        victim, victim_pid = sorted(new_nodes.items())[0]
        supervisor.call_sync("stopProcess", f"node-{victim}", True)
        supervisor.call_sync("removeProcessGroup", f"node-{victim}")
        (service.home / "supervisor" / "conf.d" / f"node-{victim}.conf").unlink()
        wait_until(
            lambda: service.node_pids().get(victim, victim_pid) != victim_pid, 30, interval=0.2,
            what="the reconciler to start the missing node again",
        )  # fmt: skip
        assert (service.home / "supervisor" / "conf.d" / f"node-{victim}.conf").exists()
        wait_until(lambda: client.dbsize() == 100, 30, what="the database to serve its data again")
        client.close()
    finally:
        service.destroy()


def test_aof_and_rdb_together_are_refused_and_change_nothing() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create(service, "c1", "--clustering-policy", "NoCluster", "--high-availability", "Disabled",
                "--persistence", "aof-enabled=true", "aof-frequency=1s")  # fmt: skip
        uid = _uid(service)
        (node_dir,) = _node_dirs(service, uid)
        conf_before = _conf(node_dir)
        pids = service.node_pids()
        path = service.cluster_path("rg", "c1") + "/databases/default?api-version=2025-07-01"
        response = service.http().patch(
            path, json={"properties": {"persistence": {"aofEnabled": True, "rdbEnabled": True}}}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "InvalidParameter"
        props = _db(service, "c1")["properties"]
        assert props["persistence"] == {"aofEnabled": True, "aofFrequency": "1s", "rdbEnabled": False}
        assert props["provisioningState"] == "Succeeded"
        service.wait_passes(2)  # reconciler passes, which must find nothing to do
        assert _conf(node_dir) == conf_before
        assert service.node_pids() == pids
        info = _node_client(service, node_dir.name, _keys(service, "c1")["primaryKey"]).info("persistence")
        assert info["aof_enabled"] == 1 and info["rdb_bgsave_in_progress"] == 0
    finally:
        service.destroy()


def test_turning_persistence_off_never_brings_back_an_old_snapshot() -> None:
    service = AmrService().start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        _create(service, "snap", "--clustering-policy", "NoCluster", "--high-availability", "Disabled",
                "--persistence", "rdb-enabled=true", "rdb-frequency=12h")  # fmt: skip
        port, key = _db(service, "snap")["properties"]["port"], _keys(service, "snap")["primaryKey"]
        client = _client(service, port, key)
        for i in range(100):
            client.set(f"old:{i}", i)
        client.close()
        # A clean stop snapshots (valkey saves at shutdown when `save` is set): dump.rdb holds the keys.
        service.stop()
        wait_until(lambda: not service.pids_under_home(), 30, what="every process of the home to exit")
        service.start()
        assert _wait_answers(service, port, key).dbsize() == 100
        (node_dir,) = _node_dirs(service, _uid(service))
        assert (node_dir / "dump.rdb").exists()

        _update_persistence(service, "snap", "rdb-enabled=false")
        wait_until(lambda: not (node_dir / "dump.rdb").exists(), 10, what="the old snapshot to be removed")
        client = _client(service, port, key)
        client.flushall()
        client.set("new", "1")
        client.close()
        # The node crashes; without persistence it must come back empty, not with the old snapshot.
        (pid,) = service.node_pids().values()
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: service.node_pids() and pid not in service.node_pids().values(), 15, what="a restart"
        )
        restarted = _wait_answers(service, port, key)
        assert restarted.dbsize() == 0
        assert restarted.get("old:1") is None
    finally:
        service.destroy()
