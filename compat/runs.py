"""Running each client against one target: redis-py's own suite, the glide and ioredis scripts.

Every run writes its records (JSON lines) into the run's directory and returns them as outcomes.
The target's password reaches the clients through the environment only, never their argv.

redis-py's suite runs from its source release (compat/clients.py) with compat/redispy_plugin.py.
Standalone targets run the tests not marked ``onlycluster``, the cluster ones those not marked
``onlynoncluster``, as redis-py's own CI does; neither runs module tests (``redismod``: Valkey has no
Redis Stack modules). Left out, because they need what no target here has: the asyncio copies of the
tests (``test_asyncio``: the same commands again, twice the time), Sentinel on fixed ports, client
certificates (``test_ssl``), Entra ID (``test_auth``, ``test_credentials``), Redis Enterprise's
scenario endpoints and multi-database setups, an OpenTelemetry collector, and an HTTP server.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

from compat.clients import Clients
from compat.report import Outcome, parse_outcomes
from compat.targets import Target

HERE = Path(__file__).resolve().parent
REDISPY_LEFT_OUT = [
    "tests/test_asyncio", "tests/test_scenario", "tests/test_multidb", "tests/test_observability",
    "tests/test_http", "tests/test_auth", "tests/maint_notifications", "tests/test_credentials.py",
    "tests/test_sentinel.py", "tests/test_sentinel_managed_connection.py", "tests/test_ssl.py",
]  # fmt: skip
STANDALONE_MARKERS = "not onlycluster and not redismod"
CLUSTER_MARKERS = "not onlynoncluster and not redismod"
TEST_TIMEOUT = 30  # seconds per test, as redis-py's own configuration says
RUN_TIMEOUT = 3600


def _target_env(target: Target, results: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "COMPAT_HOST": target.host,
        "COMPAT_PORT": str(target.port),
        "COMPAT_PASSWORD": target.password,
        "COMPAT_TLS": "1" if target.tls else "0",
        "COMPAT_CLUSTER": "1" if target.cluster else "0",
        "COMPAT_RESULTS_FILE": str(results),
    }
    if target.ca_file:
        env["SSL_CERT_FILE"] = target.ca_file
    else:
        env.pop("SSL_CERT_FILE", None)
    return env


def _read(results: Path) -> dict[str, Outcome]:
    if not results.exists():
        return {}
    return parse_outcomes(json.loads(line) for line in results.read_text().splitlines() if line.strip())


def run_redispy(
    clients: Clients, target: Target, out: Path, select: list[str] | None = None, name: str = "redis-py"
) -> dict[str, Outcome]:
    """redis-py's suite (or the tests ``select`` names) against ``target``; its outcomes by test id."""
    results = out / f"{name}-{target.name}.jsonl"
    results.unlink(missing_ok=True)
    scheme = "rediss" if target.tls else "redis"
    env = {
        **_target_env(target, results),
        "COMPAT_REDIS_URL": f"{scheme}://:{quote(target.password, safe='')}@{target.host}:{target.port}/0",
        "COMPAT_PORTS": ",".join(map(str, target.ports)),
        "COMPAT_STANDALONE": "0" if target.cluster else "1",
        "COMPAT_INFO_FILE": str(out / f"{name}-{target.name}.info.json"),
        "PYTHONPATH": str(HERE),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = [
        str(clients.python), "-m", "pytest", *(select or ["tests"]),
        *(f"--ignore={p}" for p in REDISPY_LEFT_OUT),
        "-m", CLUSTER_MARKERS if target.cluster else STANDALONE_MARKERS,
        "-p", "redispy_plugin", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "-rN",
        f"--timeout={TEST_TIMEOUT}", "-W", "ignore",
    ]  # fmt: skip
    if target.cluster:
        argv.append(f"--redis-cluster-nodes={target.nodes}")
    with open(out / f"{name}-{target.name}.log", "w") as log:
        try:
            subprocess.run(
                argv, cwd=clients.redispy_suite, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            log.write(f"\ncompat: the suite did not finish in {RUN_TIMEOUT} s\n")
    return _read(results)


def run_glide(clients: Clients, target: Target, out: Path) -> dict[str, Outcome]:
    """compat/glide_check.py against ``target``."""
    results = out / f"glide-{target.name}.jsonl"
    results.unlink(missing_ok=True)
    with open(out / f"glide-{target.name}.log", "w") as log:
        subprocess.run(
            [str(clients.python), str(HERE / "glide_check.py")], env=_target_env(target, results),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
    return _read(results)


def run_ioredis(clients: Clients, target: Target, out: Path) -> dict[str, Outcome]:
    """compat/ioredis_check.js against ``target`` (nothing when the machine has no node)."""
    if clients.node is None:
        return {}
    results = out / f"ioredis-{target.name}.jsonl"
    results.unlink(missing_ok=True)
    env = {**_target_env(target, results), "NODE_PATH": str(clients.node_modules)}
    with open(out / f"ioredis-{target.name}.log", "w") as log:
        subprocess.run(
            [clients.node, str(HERE / "ioredis_check.js")], env=env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
    return _read(results)
