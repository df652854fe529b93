"""A real amr installation for integration tests: `amr serve --detach` in a private AMR_HOME.

Each instance gets its own home under /tmp (unix socket paths must stay short), its own API port
and its own port ranges, so tests never touch a user's amr or each other.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from amr.logic.keyspace.keyslot import choose_key_slot
from amr.reconciler.loop import IDLE_INTERVAL
from amr.settings import Settings

AMR = [sys.executable, "-m", "amr"]
_bases = itertools.count(0)


def _port_base(instance: int) -> int:
    """The first of 20 ports for the ``instance``-th AmrService of this process. Under pytest-xdist
    each worker (gw0, gw1 ...) has a block of its own, so parallel workers never share a range; a
    block holds 50 instances, reused in turn (an instance is destroyed long before its turn comes
    back). Outside xdist the pid picks one of the blocks after the workers', as two pytest runs may
    share the machine."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    block = int(worker.removeprefix("gw")) if worker.startswith("gw") else 4 + os.getpid() % 8
    return 20000 + block * 1000 + (instance % 50) * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy (and return that); fail after ``timeout``
    seconds with the last error it raised. The one wait of the test suite: no bare sleeps."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: {last_error!r}")


class AmrService:
    """One amr installation driven through its real commands."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="amr-", dir="/tmp")) / "h"
        base = _port_base(next(_bases))
        self.api_port = free_port()
        # Each service's own port: services of tests run side by side, and amr monitord serves it.
        self.prometheus_port = free_port()
        self.env = {
            **os.environ,
            "AMR_HOME": str(self.home),
            "AMR_API_PORT": str(self.api_port),
            "AMR_MONITOR_PROMETHEUS_PORT": str(self.prometheus_port),
            "AMR_GATEWAY_PORT_RANGE_START": str(base),
            "AMR_GATEWAY_PORT_RANGE_END": str(base + 9),
            "AMR_GATEWAY_NODE_PORT_RANGE_START": str(base + 10),
            "AMR_GATEWAY_NODE_PORT_RANGE_END": str(base + 19),
            **(extra_env or {}),
        }
        self.env.pop("SSL_CERT_FILE", None)
        self._http: httpx.Client | None = None

    # --- lifecycle ---
    def start(self) -> AmrService:
        result = self.amr("serve", "--detach", timeout=60)
        assert result.returncode == 0, result.stderr + result.stdout
        self._http = None
        return self

    def stop(self) -> None:
        self.amr("stop", timeout=60)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            for pid in self.pids_under_home():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(self.home.parent, ignore_errors=True)

    def pids_under_home(self) -> list[int]:
        """Processes whose command line mentions this AMR_HOME (supervisor, api, gateway, nodes)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            mine = str(self.home) in cmdline or cwd == str(self.home) or cwd.startswith(f"{self.home}/")
            if mine and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
        return pids

    # --- the CLI ---
    def amr(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*AMR, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, f"amr {' '.join(args)} failed: {result.stderr}{result.stdout}"
        return result

    def amr_json(self, *args: str) -> Any:
        return json.loads(self.amr(*args, check=True).stdout)

    def primary_key(self, cluster: str, group: str = "rg") -> str:
        """The primary access key of a cache's database, through the CLI."""
        keys = self.amr_json(
            "redisenterprise", "database", "list-keys", "--cluster-name", cluster, "-g", group
        )
        return str(keys["primaryKey"])

    # --- raw HTTPS ---
    @property
    def credentials(self) -> dict[str, str]:
        return json.loads((self.home / "credentials.json").read_text())

    @property
    def ca_file(self) -> str:
        return str(self.home / "pki" / "ca.pem")

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.api_port}"

    def token(self) -> str:
        return self.amr_json("account", "get-access-token")["accessToken"]

    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url,
                verify=ssl.create_default_context(cafile=self.ca_file),
                headers={"Authorization": f"Bearer {self.token()}"},
                timeout=30,
            )
        return self._http

    @property
    def subscription(self) -> str:
        return self.credentials["subscriptionId"]

    def cluster_path(self, group: str, cluster: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.Cache/redisEnterprise/{cluster}"
        )

    # --- the reconciler's passes ---
    def reconciler_heartbeat(self) -> dict[str, Any]:
        """What the reconciler last wrote to AMR_HOME/run/reconciler.json (``passes``, ``at``, ``pid``);
        {} before its first pass."""
        try:
            return dict(json.loads(Settings(home=self.home).reconciler_heartbeat_file.read_text()))
        except FileNotFoundError:
            return {}

    def reconciler_passes(self) -> int:
        """How many passes the running control plane's reconciler has completed."""
        return int(self.reconciler_heartbeat().get("passes", 0))

    def wait_passes(
        self,
        n: int = 2,
        timeout: float | None = None,
        meanwhile: Callable[[], None] | None = None,
        interval: float = 0.05,
    ) -> None:
        """Wait until the reconciler completed ``n`` more passes than it had: how a test waits for
        something *not* to happen, then asserts it did not. Two at least: the first may have begun
        before the wait, and a pass starts each database's check without waiting for it (the next
        pass comes an idle interval later). A restarted control plane counts from 1 again (another
        pid). ``meanwhile`` runs at each poll; an AssertionError from it fails the wait at once."""
        start = self.reconciler_heartbeat()
        broken: list[AssertionError] = []

        def done() -> bool:
            if meanwhile is not None:
                try:
                    meanwhile()
                except AssertionError as e:
                    broken.append(e)
                    return True
            now = self.reconciler_heartbeat()
            same = now.get("pid") == start.get("pid")
            return int(now.get("passes", 0)) - (int(start.get("passes", 0)) if same else 0) >= n

        timeout = timeout or 20 + n * IDLE_INTERVAL
        wait_until(done, timeout, interval=interval, what=f"{n} more reconciler passes")
        if broken:
            raise broken[0]

    def node_pids(self) -> dict[str, int]:
        """valkey-server processes of this installation, by node name. A node's forked children
        (a snapshot for a replica's sync: same binary, same directory) are not the node."""
        found: dict[int, tuple[str, int]] = {}
        for pid in self.pids_under_home():
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
                # The parent pid is the field after the parenthesised command name.
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if exe.endswith("valkey-server") and cwd.parent.parent == self.home / "nodes":
                found[pid] = (cwd.name, parent)
        return {name: pid for pid, (name, parent) in found.items() if parent not in found}


def sdk_credential(service: AmrService) -> Any:
    """An azure-identity credential of amr's admin principal, trusting amr's CA."""
    from azure.identity import ClientSecretCredential

    creds = service.credentials
    return ClientSecretCredential(
        creds["tenantId"], creds["clientId"], creds["clientSecret"], authority=service.base_url,
        disable_instance_discovery=True, connection_verify=service.ca_file,
    )  # fmt: skip


def monitor_client(service: AmrService) -> Any:
    """azure-mgmt-monitor's MonitorManagementClient against the service's API (close it after)."""
    from azure.mgmt.monitor import MonitorManagementClient

    return MonitorManagementClient(
        sdk_credential(service),
        service.subscription,
        base_url=service.base_url,
        connection_verify=service.ca_file,
    )


def running_service(extra_env: dict[str, str] | None = None) -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, destroyed afterwards (the body of a fixture)."""
    svc = AmrService(extra_env).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


# Four shards per database, as the sharding and scaling tests use.
FOUR_SHARDS = {"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}


def first_shard_key(prefix: str) -> str:
    """A key named ``prefix<n>`` in the first of four shards' slots (0-4095)."""
    return next(f"{prefix}{i}" for i in range(1000) if choose_key_slot(f"{prefix}{i}".encode()) < 4096)


def create_cache(service: AmrService, name: str, sku: str, policy: str, ha: str = "Disabled") -> redis.Redis:
    """A cache (in resource group ``rg``) with access keys, and a TLS client of its database."""
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy, "--high-availability", ha,
    )  # fmt: skip
    return cache_client(service, name)


def cache_client(service: AmrService, name: str, **kwargs: Any) -> redis.Redis:
    """A TLS client of a cache's database with its primary key, once the database answers."""
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    key = service.primary_key(name)
    client = redis.Redis(
        host="localhost", port=db["properties"]["port"], password=key, ssl=True,
        ssl_ca_certs=service.ca_file, decode_responses=True, **kwargs,
    )  # fmt: skip
    wait_until(client.ping, 30, what=f"{name} answers")
    return client


def raw_connection(service: AmrService, name: str) -> tuple[ssl.SSLSocket, bytes]:
    """A raw TLS connection to a cache's database endpoint (not authenticated yet) and its primary key."""
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    key = service.primary_key(name)
    ctx = ssl.create_default_context(cafile=service.ca_file)
    sock = ctx.wrap_socket(
        socket.create_connection(("localhost", db["properties"]["port"])), server_hostname="localhost"
    )
    sock.settimeout(10)
    return sock, key.encode()


def read_until(sock: socket.socket, expected: bytes) -> bytes:
    """What ``sock`` sends until it ends with ``expected`` (or closes: then what it sent)."""
    data = b""
    while not data.endswith(expected):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def enterprise_cluster(service: AmrService, name: str) -> redis.Redis:
    """A four-shard EnterpriseCluster cache (the service caps shards at four) and a TLS client of it."""
    client = create_cache(service, name, "Balanced_B20", "EnterpriseCluster")
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    assert db["properties"]["shardCount"] == 4
    return client
