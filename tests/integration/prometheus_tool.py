"""Prometheus and promtool for integration tests, from Debian's ``prometheus`` package.

When both are on PATH they are used. Otherwise the package is downloaded (``apt-get download``) and
unpacked (``dpkg-deb -x``) into ``.cache/prometheus/`` in the repository root (gitignored), once
per machine: nothing is installed system-wide, so the package's own service is never started, and
the binaries (static Go programs needing only libc) run from there. The tests run Prometheus
themselves with a configuration in a temp dir, on a free loopback port.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.amr_service import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "prometheus"
STEP_TIMEOUT = 300


@dataclass(frozen=True)
class PrometheusTools:
    prometheus: str
    promtool: str


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT, stdin=subprocess.DEVNULL
    )


def ensure_prometheus() -> PrometheusTools:
    """The binaries, fetched from Debian's package first when they are neither on PATH nor cached."""
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if on_path[0] and on_path[1]:
        return PrometheusTools(on_path[0], on_path[1])
    bin_dir = CACHE / "root" / "usr" / "bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time; the others find its result
        if not (CACHE / "installed").exists():
            download = CACHE / "download"
            shutil.rmtree(download, ignore_errors=True)
            shutil.rmtree(CACHE / "root", ignore_errors=True)
            download.mkdir()
            got = _run(["apt-get", "download", "prometheus"], download)
            if got.returncode != 0 and os.geteuid() == 0:
                # A fresh machine may have no package lists yet.
                _run(["apt-get", "update", "-qq"], download)
                got = _run(["apt-get", "download", "prometheus"], download)
            assert got.returncode == 0, f"apt-get download prometheus failed:\n{got.stderr[-2000:]}"
            (deb,) = download.glob("prometheus_*.deb")
            unpacked = _run(["dpkg-deb", "-x", str(deb), str(CACHE / "root")], download)
            assert unpacked.returncode == 0, unpacked.stderr
            shutil.rmtree(download)
            (CACHE / "installed").touch()
    return PrometheusTools(str(bin_dir / "prometheus"), str(bin_dir / "promtool"))


@dataclass(frozen=True)
class RunningPrometheus:
    url: str

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector (``/api/v1/query``)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@contextlib.contextmanager
def running_prometheus(prometheus: str, target: str, token_file: Path) -> Iterator[RunningPrometheus]:
    """A real Prometheus scraping ``target`` (host:port) every second with the bearer token in
    ``token_file``, on a free loopback port, with its data in a temp dir; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="prom-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: amr\n"
            f"    authorization:\n      type: Bearer\n      credentials_file: {token_file}\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        log = open(Path(tmp) / "prometheus.log", "w")  # closed in the finally below
        process = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert process.poll() is None, (Path(tmp) / "prometheus.log").read_text()[-2000:]
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
                return False

            wait_until(ready, 60, what="Prometheus is ready")
            yield RunningPrometheus(url)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            log.close()
