"""Endpoint throughput: amr's gateway against HAProxy and the engine itself, in one run.

Starts a private amr (tests/integration/amr_service.py's AmrService), creates two single-node databases
(NoCluster, high availability Disabled, access keys Enabled): one Encrypted, one Plaintext. In front of
the very node each database routes to, it starts HAProxy 2.x with one thread: a plain TCP proxy before
the Plaintext database's node, a TLS terminator (amr's own server certificate) before the Encrypted
one's. Then redis-benchmark (SET and GET, 50 clients, unpipelined and -P 16) runs against every target in
alternating rounds, the order rotated each round, and the median of the rounds is reported:

    engine (plain node)   redis-benchmark -s <node socket>       baseline for the Plaintext database
    haproxy plain         HAProxy mode tcp -> node socket
    amr Plaintext         the gateway port of the Plaintext database
    engine (tls node)     redis-benchmark -s <node socket>       baseline for the Encrypted database
    haproxy TLS           HAProxy ssl crt -> node socket
    amr Encrypted         the gateway port of the Encrypted database (TLS)

Ratios: amr Plaintext / haproxy plain and amr Encrypted / haproxy TLS, per row; >= 1.0x passes, below
0.8x fails. Last, it opens 5,000 idle TLS connections to the Encrypted port and prints the gateway's RSS.

Installs haproxy and redis-tools with apt-get if they are missing. Run with `make bench-endpoint` or
`.venv/bin/python bench/endpoint.py [--workers N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.amr_service import AmrService, free_port, wait_until  # noqa: E402

CACHE_API = {"api-version": "2025-07-01"}
GROUP_API = {"api-version": "2024-03-01"}
CLIENTS = 50
REQUESTS = {1: 60_000, 16: 400_000}  # per test (SET, then GET) and pipeline depth
IDLE_CONNECTIONS = 5000
PASS_RATIO = 1.0
FAIL_RATIO = 0.8


# --- tools -----------------------------------------------------------------------------------------


def ensure_tools() -> None:
    """haproxy and redis-benchmark (with --tls) from Debian, installed if missing."""
    if shutil.which("haproxy") and shutil.which("redis-benchmark"):
        return
    print("installing haproxy and redis-tools with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "haproxy", "redis-tools"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- amr -------------------------------------------------------------------------------------------


def wait_lro(http: httpx.Client, response: httpx.Response) -> None:
    url = response.headers.get("Azure-AsyncOperation")
    if not url:
        return
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = http.get(url).json().get("status")
        if status == "Succeeded":
            return
        if status in ("Failed", "Canceled"):
            raise RuntimeError(f"operation {url} ended {status}")
        time.sleep(0.05)
    raise TimeoutError(f"operation {url} did not finish")


def create_database(service: AmrService, name: str, protocol: str) -> tuple[int, str]:
    """A single-node database; returns (gateway port, primary key)."""
    http = service.http()
    cluster = service.cluster_path("rg-bench", name)
    r = http.put(
        cluster,
        params=CACHE_API,
        json={
            "location": "eastus",
            "sku": {"name": "Balanced_B1"},
            "properties": {
                "highAvailability": "Disabled",
                "minimumTlsVersion": "1.2",
                "publicNetworkAccess": "Enabled",
            },
        },
    )
    if r.is_error:
        raise RuntimeError(f"cache create failed: {r.status_code} {r.text}")
    wait_lro(http, r)
    db = f"{cluster}/databases/default"
    r = http.put(
        db,
        params=CACHE_API,
        json={
            "properties": {
                "accessKeysAuthentication": "Enabled",
                "clientProtocol": protocol,
                "clusteringPolicy": "NoCluster",
                "evictionPolicy": "NoEviction",
            }
        },
    )
    if r.is_error:
        raise RuntimeError(f"database create failed: {r.status_code} {r.text}")
    wait_lro(http, r)
    port = int(http.get(db, params=CACHE_API).raise_for_status().json()["properties"]["port"])
    key = http.post(f"{db}/listKeys", params=CACHE_API).raise_for_status().json()["primaryKey"]
    return port, key


def route_target(home: Path, port: int) -> str:
    """The unix socket the gateway forwards ``port`` to, from routes.json."""
    table = json.loads((home / "gateway" / "routes.json").read_text())
    routes = table["routes"] if isinstance(table, dict) else table
    for route in routes:
        if int(route["port"]) == port:
            return str(route["target"])
    raise RuntimeError(f"no route for port {port} in routes.json")


def gateway_pids(home: Path) -> list[int]:
    """Gateway worker processes of this AMR_HOME (``python -m amr gateway --home <home>``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "gateway" in args and str(home) in args and "amr" in args:
            pids.append(int(entry.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- haproxy ---------------------------------------------------------------------------------------


def start_haproxy(
    workdir: Path, plain_port: int, plain_sock: str, tls_port: int, tls_sock: str, crt: Path
) -> subprocess.Popen[bytes]:
    conf = workdir / "haproxy.cfg"
    conf.write_text(
        "\n".join(
            [
                "global",
                "    nbthread 1",
                "    maxconn 4000",
                "    ssl-default-bind-options ssl-min-ver TLSv1.2",
                "defaults",
                "    mode tcp",
                "    timeout connect 5s",
                "    timeout client 1h",
                "    timeout server 1h",
                "frontend plain",
                f"    bind 127.0.0.1:{plain_port}",
                "    default_backend node_plain",
                "frontend tls",
                f"    bind 127.0.0.1:{tls_port} ssl crt {crt} ssl-min-ver TLSv1.2",
                "    default_backend node_tls",
                "backend node_plain",
                f"    server s1 unix@{plain_sock}",
                "backend node_tls",
                f"    server s1 unix@{tls_sock}",
                "",
            ]
        )
    )
    check = subprocess.run(["haproxy", "-c", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy config invalid: {check.stderr}{check.stdout}")
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "haproxy.log", "wb"),
    )
    for port in (plain_port, tls_port):
        if not _wait(lambda p=port: proc.poll() is None and _port_open(p), 10):
            proc.kill()
            raise RuntimeError(f"haproxy did not listen on {port}: {(workdir / 'haproxy.log').read_text()}")
    return proc


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- redis-benchmark -------------------------------------------------------------------------------

RESULT = re.compile(r"^(SET|GET): ([0-9.]+) requests per second", re.MULTILINE)


def run_benchmark(target_args: list[str], key: str, pipeline: int) -> dict[str, float]:
    n = REQUESTS[pipeline]
    argv = [
        "redis-benchmark",
        *target_args,
        "-a",
        key,
        "-t",
        "set,get",
        "-c",
        str(CLIENTS),
        "-n",
        str(n),
        "-P",
        str(pipeline),
        "-q",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out = proc.stdout.replace("\r", "\n")
    found = {m.group(1): float(m.group(2)) for m in RESULT.finditer(out)}
    if proc.returncode != 0 or set(found) != {"SET", "GET"}:
        raise RuntimeError(
            f"redis-benchmark {' '.join(target_args)} failed: {proc.stderr[-500:]}{out[-500:]}"
        )
    return found


# --- idle TLS connections --------------------------------------------------------------------------


def open_idle_tls(port: int, ca_file: str, count: int, threads: int = 8) -> list[ssl.SSLSocket]:
    ctx = ssl.create_default_context(cafile=ca_file)
    conns: list[ssl.SSLSocket] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(n: int) -> None:
        mine = []
        for _ in range(n):
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=30)
                mine.append(ctx.wrap_socket(raw, server_hostname="localhost"))
            except OSError as e:
                errors.append(type(e).__name__ + ": " + str(e))
                break
        with lock:
            conns.extend(mine)

    per = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    ts = [threading.Thread(target=worker, args=(n,)) for n in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        print(f"  {len(errors)} connection errors, first: {errors[0]}")
    return conns


# --- main ------------------------------------------------------------------------------------------


def verdict(ratio: float) -> str:
    if ratio >= PASS_RATIO:
        return "pass"
    if ratio < FAIL_RATIO:
        return "FAIL"
    return "below target"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (gateway.workers)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median is reported)")
    parser.add_argument("--keep", action="store_true", help="leave amr and haproxy running; print how to use")
    args = parser.parse_args()

    ensure_tools()
    raise_nofile(4 * IDLE_CONNECTIONS)
    t_start = time.monotonic()
    service = AmrService(
        extra_env={
            "AMR_GATEWAY_WORKERS": str(args.workers),
            # The idle connections of the RSS check never authenticate.
            "AMR_GATEWAY_AUTH_TIMEOUT": "3600",
        }
    )
    workdir = Path(tempfile.mkdtemp(prefix="amr-bench-"))
    haproxy: subprocess.Popen[bytes] | None = None
    print(f"amr home {service.home}, gateway workers {args.workers}; starting ...", flush=True)
    try:
        service.start()
        http = service.http()
        group = f"/subscriptions/{service.subscription}/resourcegroups/rg-bench"
        http.put(group, params=GROUP_API, json={"location": "eastus"}).raise_for_status()
        plain_port, plain_key = create_database(service, "benchplain", "Plaintext")
        tls_port, tls_key = create_database(service, "benchtls", "Encrypted")
        plain_sock = route_target(service.home, plain_port)
        tls_sock = route_target(service.home, tls_port)
        pki = service.home / "pki"
        crt = workdir / "server-with-key.pem"
        crt.write_bytes((pki / "server.pem").read_bytes() + (pki / "server.key").read_bytes())
        os.chmod(crt, 0o600)
        ha_plain, ha_tls = free_port(), free_port()
        haproxy = start_haproxy(workdir, ha_plain, plain_sock, ha_tls, tls_sock, crt)
        tls_args = ["--tls", "--cacert", service.ca_file, "--sni", "localhost"]
        gateway = gateway_pids(service.home)
        targets: list[tuple[str, list[str], str, list[int]]] = [
            ("engine (plain node)", ["-s", plain_sock], plain_key, []),
            ("haproxy plain", ["-h", "127.0.0.1", "-p", str(ha_plain)], plain_key, [haproxy.pid]),
            ("amr Plaintext", ["-h", "127.0.0.1", "-p", str(plain_port)], plain_key, gateway),
            ("engine (tls node)", ["-s", tls_sock], tls_key, []),
            ("haproxy TLS", ["-h", "127.0.0.1", "-p", str(ha_tls), *tls_args], tls_key, [haproxy.pid]),
            ("amr Encrypted", ["-h", "127.0.0.1", "-p", str(tls_port), *tls_args], tls_key, gateway),
        ]
        wait_until(lambda: _port_open(plain_port) and _port_open(tls_port), 10, what="gateway ports")
        if args.keep:
            for name, targs, key, _ in targets:
                print(f"  {name}: redis-benchmark {' '.join(targs)} -a {key}")
            input("press Enter to stop ... ")
        print(f"set up in {time.monotonic() - t_start:.1f} s; nodes {plain_sock} and {tls_sock}", flush=True)

        rows = [(op, p) for p in (1, 16) for op in ("SET", "GET")]
        samples: dict[tuple[str, str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        for rnd in range(args.rounds):
            order = targets[rnd % len(targets) :] + targets[: rnd % len(targets)]
            t_round = time.monotonic()
            for pipeline in (1, 16):
                for name, targs, key, pids in order:
                    cpu_before = cpu_seconds(pids)
                    result = run_benchmark(targs, key, pipeline)
                    if pids:
                        used = cpu_seconds(pids) - cpu_before
                        cpu.setdefault((name, pipeline), []).append(used * 1e6 / (2 * REQUESTS[pipeline]))
                    for op, value in result.items():
                        samples.setdefault((name, op, pipeline), []).append(value)
            print(f"round {rnd + 1}/{args.rounds} done in {time.monotonic() - t_round:.1f} s", flush=True)

        med = {k: statistics.median(v) for k, v in samples.items()}
        names = [t[0] for t in targets]
        print()
        print(
            f"redis-benchmark -c {CLIENTS}, median of {args.rounds} alternating rounds, ops/s "
            f"(gateway workers: {args.workers}; {os.cpu_count()} CPUs)"
        )
        header = f"{'row':<10}" + "".join(f"{n:>21}" for n in names)
        print(header)
        for op, p in rows:
            print(f"{op + ' P' + str(p):<10}" + "".join(f"{med[(n, op, p)]:>21,.0f}" for n in names))
        print()
        print(f"{'row':<10}{'amr Plaintext / haproxy plain':>34}{'amr Encrypted / haproxy TLS':>34}")
        failed = False
        for op, p in rows:
            r_plain = med[("amr Plaintext", op, p)] / med[("haproxy plain", op, p)]
            r_tls = med[("amr Encrypted", op, p)] / med[("haproxy TLS", op, p)]
            failed |= r_plain < FAIL_RATIO or r_tls < FAIL_RATIO
            print(
                f"{op + ' P' + str(p):<10}{f'{r_plain:.2f}x {verdict(r_plain)}':>34}"
                f"{f'{r_tls:.2f}x {verdict(r_tls)}':>34}"
            )
        print(f"targets: >= {PASS_RATIO:.1f}x pass, < {FAIL_RATIO:.1f}x fail")
        print()
        print("proxy CPU (user+sys) per request, median, microseconds:")
        for pipeline in (1, 16):
            print(
                f"  P{pipeline:<3}"
                + "".join(
                    f"  {name}: {statistics.median(cpu[(name, pipeline)]):.2f}"
                    for name, _, _, pids in targets
                    if pids
                )
            )

        # Memory with many open TLS connections.
        pids = gateway_pids(service.home)
        before = {pid: rss_kib(pid) for pid in pids}
        t0 = time.monotonic()
        conns = open_idle_tls(tls_port, service.ca_file, IDLE_CONNECTIONS)
        opened = time.monotonic() - t0
        time.sleep(1.0)
        after = {pid: rss_kib(pid) for pid in gateway_pids(service.home)}
        alive = sum(1 for c in conns if _still_open(c))
        print()
        print(f"{len(conns)} TLS connections opened in {opened:.1f} s ({alive} still open after 1 s)")
        for pid in sorted(after):
            print(
                f"  gateway pid {pid}: VmRSS {before.get(pid, 0) / 1024:.1f} MiB idle -> "
                f"{after[pid] / 1024:.1f} MiB with the connections open"
            )
        total_before, total_after = sum(before.values()), sum(after.values())
        print(
            f"  gateway total RSS: {total_before / 1024:.1f} MiB -> {total_after / 1024:.1f} MiB "
            f"({(total_after - total_before) / max(len(conns), 1):.1f} KiB per connection)"
        )
        for c in conns:
            c.close()
        print(f"total bench time {time.monotonic() - t_start:.0f} s")
        return 1 if failed else 0
    finally:
        if haproxy is not None:
            haproxy.terminate()
            try:
                haproxy.wait(10)
            except subprocess.TimeoutExpired:
                haproxy.kill()
        service.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def _still_open(conn: ssl.SSLSocket) -> bool:
    try:
        conn.setblocking(False)
        data = conn.recv(1)
        return data != b""
    except ssl.SSLWantReadError:
        return True
    except (BlockingIOError, OSError):
        return isinstance(sys.exc_info()[1], BlockingIOError)


if __name__ == "__main__":
    sys.exit(main())
