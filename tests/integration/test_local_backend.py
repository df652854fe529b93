"""The local node backend against a real supervisord and real valkey-server nodes.

supervisord is started with ``include_core_programs=False``: the test manages nodes only, so the main
config has no ``api``/``gateway`` programs (which would run ``python -m amr api``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from amr.errors import ConfigError, NodeError
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.node import NodeSpec, ProcessState, Role
from amr.nodes.engine import find_server_binary
from amr.nodes.local import LocalNodeBackend
from amr.nodes.readiness import engine_reason
from amr.nodes.supervisor import SupervisorClient
from amr.nodes.supervisord import (
    client_for,
    include_dir,
    start_supervisord,
    stop_supervisord,
    supervisord_running,
)
from amr.settings import Settings, load_settings
from amr.testing.waits import wait_until_async
from tests.integration.amr_service import free_port, wait_until

ADMIN_USER = "amr-admin"
MASTERS = CredentialMasters(admin="s3cret-admin-master")
ADMIN_PASSWORD = MASTERS.admin_for("db1")  # every node here belongs to database db1


def node_config(directory: Path, sock: str, port: int = 0, extra: str = "") -> str:
    return (
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f'unixsocket "{sock}"\n'
        "unixsocketperm 700\n"
        'save ""\n'
        "appendonly no\n"
        'logfile ""\n'
        f'dir "{directory}"\n'
        "user default off\n"
        f"user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n"
        f"{extra}"
    )


def make_spec(settings: Settings, name: str, port: int = 0, extra: str = "") -> NodeSpec:
    directory = settings.nodes_dir / "db1" / name
    sock = str(settings.run_dir / f"{name}.sock")
    return NodeSpec(
        name=name,
        database_uid="db1",
        shard=0,
        role=Role.PRIMARY,
        directory=str(directory),
        socket=sock,
        internal_host="127.0.0.1",
        port=port,
        config=node_config(directory, sock, port, extra),
    )


def home_processes(home: Path) -> list[psutil.Process]:
    """Processes whose command line mentions the test's AMR_HOME (supervisord and its nodes)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(home) in arg for arg in p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def settings() -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp(prefix="amr-", dir="/tmp"))
    s = load_settings(home=home, env={})
    try:
        yield s
    finally:
        try:
            stop_supervisord(s, timeout=20)
        finally:
            for p in home_processes(home):
                p.kill()
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def supervisor(settings: Settings) -> SupervisorClient:
    pid = start_supervisord(settings, foreground=False, include_core_programs=False)
    assert psutil.pid_exists(pid)
    return client_for(settings)


@pytest.fixture
def backend(settings: Settings, supervisor: SupervisorClient) -> LocalNodeBackend:
    return LocalNodeBackend(settings, supervisor, MASTERS)


def test_supervisord_start_refuses_second_and_stops_clean(settings: Settings) -> None:
    assert not supervisord_running(settings)
    assert stop_supervisord(settings) is False
    pid = start_supervisord(settings, foreground=False, include_core_programs=False)
    assert supervisord_running(settings)
    assert (settings.supervisor_dir / "supervisor.sock").stat().st_mode & 0o777 == 0o700
    assert settings.supervisor_dir.stat().st_mode & 0o777 == 0o700
    with pytest.raises(ConfigError, match="already running"):
        start_supervisord(settings, foreground=False, include_core_programs=False)
    assert stop_supervisord(settings) is True
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not supervisord_running(settings)


def test_supervisord_foreground(settings: Settings) -> None:
    code = (
        "import sys; from pathlib import Path; from amr.settings import load_settings; "
        "from amr.nodes.supervisord import start_supervisord; "
        "start_supervisord(load_settings(home=Path(sys.argv[1]), env={}), True, include_core_programs=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(settings.home)])
    try:
        wait_until(lambda: supervisord_running(settings) or proc.poll() is not None, timeout=10)
        assert proc.poll() is None, "foreground supervisord exited"
        # execv: supervisord runs in the very process we started.
        assert client_for(settings).call_sync("getPID") == proc.pid
        assert stop_supervisord(settings) is True
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_node_lifecycle(settings: Settings, supervisor: SupervisorClient, backend: LocalNodeBackend) -> None:
    spec = make_spec(settings, "n1")

    async def scenario() -> None:
        assert (await backend.node_status("n1")).state is ProcessState.ABSENT

        t0 = time.perf_counter()
        await backend.ensure_node(spec)
        t1 = time.perf_counter()
        await backend.wait_ready(spec, timeout=10)
        t2 = time.perf_counter()
        print(f"\nensure_node {1000 * (t1 - t0):.1f} ms, then ready after {1000 * (t2 - t1):.1f} ms")
        assert t2 - t1 < 1.0

        node_dir = Path(spec.directory)
        assert node_dir.stat().st_mode & 0o777 == 0o700
        assert (node_dir / "valkey.conf").stat().st_mode & 0o777 == 0o600
        assert (node_dir / "valkey.conf").read_text() == spec.config
        assert (include_dir(settings) / "node-n1.conf").exists()

        status = await backend.node_status("n1")
        assert status.state is ProcessState.RUNNING and status.pid
        assert [s.name for s in await backend.list_nodes()] == ["n1"]

        admin = backend.admin(spec)
        try:
            assert await admin.execute("PING") in (True, "PONG")
            assert await admin.execute("SET", "k", "v")
            assert await admin.execute("GET", "k") == "v"
            with pytest.raises(NodeError, match="BOGUSCMD"):
                await admin.execute("BOGUSCMD")
        finally:
            await admin.close()

        # A second ensure_node is a no-op: same process.
        conf_mtime = (node_dir / "valkey.conf").stat().st_mtime_ns
        await backend.ensure_node(spec)
        assert (await backend.node_status("n1")).pid == status.pid
        assert (node_dir / "valkey.conf").stat().st_mtime_ns == conf_mtime

        # A changed valkey.conf is written but the running node is not restarted.
        changed = NodeSpec(**{**spec.__dict__, "config": spec.config + "maxmemory 10mb\n"})
        await backend.ensure_node(changed)
        assert (await backend.node_status("n1")).pid == status.pid
        assert (node_dir / "valkey.conf").read_text() == changed.config

        # kill -9: the supervisor restarts it.
        assert status.pid is not None
        os.kill(status.pid, signal.SIGKILL)

        async def restarted() -> bool:
            now = await backend.node_status("n1")
            return now.state is ProcessState.RUNNING and bool(now.pid) and now.pid != status.pid

        await wait_until_async(restarted, 10, what="the supervisor to restart the killed node")
        await backend.wait_ready(spec, timeout=10)

        # A stopped node is started again by ensure_node.
        await supervisor.stop_process("node-n1")
        assert (await backend.node_status("n1")).state is ProcessState.STOPPED
        with pytest.raises(NodeError, match="not running"):
            await backend.wait_ready(spec, timeout=5)
        await backend.ensure_node(spec)
        await backend.wait_ready(spec, timeout=10)

        # remove_node: stopped, unregistered, files gone; and again is fine.
        await backend.remove_node("n1", spec.directory)
        assert (await backend.node_status("n1")).state is ProcessState.ABSENT
        assert not node_dir.exists()
        assert not Path(spec.socket).exists()
        assert not (include_dir(settings) / "node-n1.conf").exists()
        assert await backend.list_nodes() == []
        await backend.remove_node("n1", spec.directory)

    asyncio.run(scenario())


def test_bad_config_reports_engine_reason(backend: LocalNodeBackend, settings: Settings) -> None:
    spec = make_spec(settings, "bad", extra="bogus-directive yes\n")

    async def scenario() -> None:
        await backend.ensure_node(spec)
        t0 = time.perf_counter()
        with pytest.raises(NodeError) as info:
            await backend.wait_ready(spec, timeout=10)
        assert time.perf_counter() - t0 < 9  # reported when the engine exits, not at the 10 s deadline
        message = str(info.value)
        print(f"\n{message}")
        assert "Bad directive or wrong number of arguments" in message
        assert "bogus-directive" in message
        assert ADMIN_PASSWORD not in message
        await backend.remove_node("bad", spec.directory)
        assert not Path(spec.directory).exists()

    asyncio.run(scenario())


def test_port_in_use_reports_engine_reason(backend: LocalNodeBackend, settings: Settings) -> None:
    port = free_port()
    first = make_spec(settings, "p1", port=port)
    second = make_spec(settings, "p2", port=port)

    async def scenario() -> None:
        await backend.ensure_node(first)
        await backend.wait_ready(first, timeout=10)
        await backend.ensure_node(second)
        with pytest.raises(NodeError, match="Address already in use"):
            await backend.wait_ready(second, timeout=10)
        assert [s.name for s in await backend.list_nodes()] == ["p1", "p2"]
        for spec in (first, second):
            await backend.remove_node(spec.name, spec.directory)

    asyncio.run(scenario())


def test_remove_refuses_paths_outside_nodes_dir(backend: LocalNodeBackend, settings: Settings) -> None:
    with pytest.raises(NodeError, match="refusing"):
        asyncio.run(backend.remove_node("x", str(settings.home)))
    assert settings.home.exists()


def test_stop_supervisord_leaves_no_process(settings: Settings, backend: LocalNodeBackend) -> None:
    specs = [make_spec(settings, f"s{i}") for i in range(3)]

    async def scenario() -> list[int]:
        for spec in specs:
            await backend.ensure_node(spec)
        await asyncio.gather(*(backend.wait_ready(spec, timeout=10) for spec in specs))
        return [s.pid for s in await backend.list_nodes() if s.pid]

    pids = asyncio.run(scenario())
    assert len(pids) == 3
    assert home_processes(settings.home)
    assert stop_supervisord(settings) is True
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert wait_until(lambda: not home_processes(settings.home), timeout=5) is True


def test_engine_reason_parsing() -> None:
    log = (
        "1:M 26 Nov 2026 21:18:50.956 # WARNING Memory overcommit must be enabled! blah\n"
        "1:M 26 Nov 2026 21:18:50.956 * oO0OoO0OoO0Oo Valkey is starting oO0OoO0OoO0Oo\n"
        "1:M 26 Nov 2026 21:18:50.958 # Warning: Could not create server TCP listening socket "
        "127.0.0.1:7000: bind: Address already in use\n"
        "1:M 26 Nov 2026 21:18:50.958 # Failed listening on port 7000 (tcp), aborting.\n"
    )
    reason = engine_reason(log)
    assert "Address already in use" in reason and "overcommit" not in reason
    fatal = (
        log + "\n*** FATAL CONFIG FILE ERROR (Version 8.1.8) ***\n"
        "Reading the configuration file, at line 9\n>>> 'user amr-admin on >pw ~* bad'\n"
        "Error in user declaration 'bad': Syntax error\n"
    )
    reason = engine_reason(fatal)
    assert "Syntax error" in reason and ">pw" not in reason


def test_find_server_binary(tmp_path: Path) -> None:
    embedded = find_server_binary(load_settings(home=tmp_path, env={}))
    assert embedded.endswith("/bin/valkey-server")
    explicit = load_settings(home=tmp_path, env={"AMR_ENGINE_SERVER_BINARY": embedded})
    assert find_server_binary(explicit) == embedded

    def with_binary(path: Path) -> Settings:
        return load_settings(home=tmp_path, env={"AMR_ENGINE_SERVER_BINARY": str(path)})

    with pytest.raises(ConfigError, match="does not exist"):
        find_server_binary(with_binary(tmp_path / "nope"))
    old = tmp_path / "old-redis"
    old.write_text("#!/bin/sh\necho 'Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.1.0'\n")
    with pytest.raises(ConfigError, match="not executable"):
        find_server_binary(with_binary(old))
    old.chmod(0o755)
    with pytest.raises(ConfigError, match=">= 7"):
        find_server_binary(with_binary(old))
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\necho 'hello 1.0'\n")
    other.chmod(0o755)
    with pytest.raises(ConfigError, match="not a valkey-server or redis-server"):
        find_server_binary(with_binary(other))
    redis7 = tmp_path / "redis7"
    redis7.write_text("#!/bin/sh\necho 'Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64'\n")
    redis7.chmod(0o755)
    assert find_server_binary(with_binary(redis7)) == str(redis7)


def test_wrong_admin_password_fails_fast(
    settings: Settings, supervisor: SupervisorClient, backend: LocalNodeBackend
) -> None:
    spec = make_spec(settings, "pw")
    wrong = LocalNodeBackend(settings, supervisor, CredentialMasters(admin="not-the-password"))

    async def scenario() -> None:
        await backend.ensure_node(spec)
        await backend.wait_ready(spec, timeout=10)
        t0 = time.perf_counter()
        with pytest.raises(NodeError, match="rejected the admin user") as info:
            await wrong.wait_ready(spec, timeout=10)
        assert time.perf_counter() - t0 < 1
        assert "not-the-password" not in str(info.value)
        await backend.remove_node(spec.name, spec.directory)

    asyncio.run(scenario())
