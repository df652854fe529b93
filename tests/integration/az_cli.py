"""The real Azure CLI for integration tests: installed from PyPI once into a cache, run with a config
directory of its own and with every proxy variable pointing at a loopback listener that records and
refuses what az would send off this machine.

The install (azure-cli into a virtualenv, then the redisenterprise extension from the wheel in
vendor/az with ``az extension add --source``) lives in ``.cache/az/<version>-<extension>/`` in the
repository root (gitignored): the first run on a machine pays for it, later runs find it there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AZ_VERSION = "2.91.0"
EXTENSION_WHEEL = ROOT / "vendor" / "az" / "redisenterprise-1.4.0-py3-none-any.whl"
CACHE = ROOT / ".cache" / "az" / f"{AZ_VERSION}-{EXTENSION_WHEEL.stem}"
INSTALL_TIMEOUT = 900  # a cold install downloads azure-cli's ~150 packages
AZ_TIMEOUT = 180  # one az command (its first run builds a command index)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class AzInstall:
    """A cached azure-cli with the extension; ``seconds``: what this run spent installing it."""

    bin_dir: Path
    extension_dir: Path
    seconds: float

    @property
    def az(self) -> str:
        return str(self.bin_dir / "az")


def _run_install_step(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr[-4000:]}{result.stdout[-2000:]}"


def ensure_az() -> AzInstall:
    """The cached install, made first if it is missing or was left half-made."""
    stamp = CACHE / "installed"
    bin_dir, extension_dir = CACHE / "venv" / "bin", CACHE / "extensions"
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    # One installer at a time (two pytest runs may share a checkout); the others wait for its stamp.
    with open(CACHE.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return AzInstall(bin_dir, extension_dir, 0.0)
        started = time.monotonic()
        shutil.rmtree(CACHE, ignore_errors=True)
        _run_install_step([sys.executable, "-m", "venv", str(CACHE / "venv")], dict(os.environ))
        _run_install_step(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                f"azure-cli=={AZ_VERSION}",
            ],
            dict(os.environ),
        )
        with tempfile.TemporaryDirectory(prefix="az-install-") as config:
            # The extension's dependencies (redis, PyJWT) come from PyPI; telemetry stays off here too.
            env = {
                **os.environ,
                "AZURE_CONFIG_DIR": config,
                "AZURE_EXTENSION_DIR": str(extension_dir),
                "AZURE_CORE_COLLECT_TELEMETRY": "false",
            }
            env.pop("REQUESTS_CA_BUNDLE", None)
            _run_install_step(
                [str(bin_dir / "az"), "extension", "add", "--source", str(EXTENSION_WHEEL), "-y"], env
            )
        stamp.write_text(f"azure-cli {AZ_VERSION} + {EXTENSION_WHEEL.name}\n")
        return AzInstall(bin_dir, extension_dir, time.monotonic() - started)


class ProxyRecorder:
    """A loopback listener that az finds as its HTTP and HTTPS proxy: it records the first line of
    every connection (``CONNECT host:443 HTTP/1.1`` for HTTPS) and refuses it with 403."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                except OSError as e:
                    first = f"(connection, then {e!r})"
                # Recorded before az hears the refusal, so a check after az exits sees it.
                self.seen.append(first or "(connection, nothing sent)")
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


class Az:
    """az with its own AZURE_CONFIG_DIR, the cached extension, the recorder as its proxy and amr's
    own host exempt from it; the amr CLI (``amr az-setup``) on the PATH next to it."""

    def __init__(
        self, install: AzInstall, base_env: dict[str, str], proxy: ProxyRecorder, config_dir: Path
    ) -> None:
        self.install, self.proxy, self.config_dir = install, proxy, config_dir
        env = {k: v for k, v in base_env.items() if k.upper() not in (*PROXY_VARIABLES, "REQUESTS_CA_BUNDLE")}
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy.url
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1"
        env["PATH"] = os.pathsep.join(
            (str(install.bin_dir), str(Path(sys.executable).parent), env.get("PATH", ""))
        )
        env["AZURE_CONFIG_DIR"] = str(config_dir)
        env["AZURE_EXTENSION_DIR"] = str(install.extension_dir)
        # The install skips byte-compiling azure-cli's 13,000 modules (minutes); az's runs then write
        # the bytecode of the few hundred they import into the cache, once.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.install.az, *args], env=self.env, capture_output=True, text=True, timeout=AZ_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check:
            assert result.returncode == 0, f"az {' '.join(args)} failed: {result.stderr}{result.stdout}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def bash(self, script: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=AZ_TIMEOUT * 4,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


# az's own update check: the first command in a new config directory asks Microsoft's storage for
# the latest az version (a HEAD request; azure/cli/core/util.py, handle_version_update), whatever the
# command and whatever the cloud; no setting turns it off. A config directory a user has used before
# made it long ago.
AZ_VERSION_CHECK = "CONNECT azcliprod.blob.core.windows.net:443 "


@contextlib.contextmanager
def az_for(install: AzInstall, base_env: dict[str, str]) -> Iterator[Az]:
    """An Az with a config directory of its own, used once before (its version check made and
    refused, telemetry off for that one command), and its own recorder; both removed afterwards."""
    proxy = ProxyRecorder()
    config = Path(tempfile.mkdtemp(prefix="az-config-"))
    try:
        az = Az(install, base_env, proxy, config)
        first = subprocess.run(
            [install.az, "cloud", "list", "-o", "none"], env={**az.env, "AZURE_CORE_COLLECT_TELEMETRY": "false"},
            capture_output=True, text=True, timeout=AZ_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert [s[: len(AZ_VERSION_CHECK)] for s in proxy.seen] == [AZ_VERSION_CHECK], proxy.seen
        proxy.seen.clear()
        yield az
    finally:
        proxy.close()
        shutil.rmtree(config, ignore_errors=True)
