"""The command line of the service: what ``amr serve`` is given reaches every process the supervisor
starts (through the environment it hands the supervisor, not through its own)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.amr_service import AMR, AmrService, free_port


def test_serve_api_port_reaches_the_api_without_amr_api_port_in_the_environment() -> None:
    svc = AmrService()
    svc.api_port = free_port()
    env = {k: v for k, v in svc.env.items() if k not in ("AMR_API_PORT", "AMR_HOME")}
    try:
        started = subprocess.run(
            [*AMR, "serve", "--detach", "--home", str(svc.home), "--api-port", str(svc.api_port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        assert started.returncode == 0, started.stderr + started.stdout
        assert f"API https://localhost:{svc.api_port}" in started.stdout
        # The control plane listens there: the CLI (which reads AMR_API_PORT) gets an answer.
        svc.env["AMR_API_PORT"] = str(svc.api_port)
        assert svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True).returncode == 0
        api = next(p for p in svc.pids_under_home() if b" api " in _cmdline(p))
        assert f"AMR_API_PORT={svc.api_port}".encode() in Path(f"/proc/{api}/environ").read_bytes().split(
            b"\0"
        )
    finally:
        svc.destroy()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""
