"""supervisord for an AMR_HOME: its files (configuration, socket, pid file, logs) and starting,
restarting and stopping it; the programs it runs are reached through ``amr.nodes.supervisor``.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from supervisor.xmlrpc import Faults

from amr.errors import ConfigError
from amr.logic.render.supervisor_conf import render_supervisord_conf
from amr.nodes.orphans import pid_alive, stop_orphan_processes
from amr.nodes.supervisor import UNREACHABLE_ERRORS, SupervisorClient
from amr.settings import Settings

log = logging.getLogger(__name__)

# Enough for the largest SKU's 200,000 connections through the gateway (two descriptors each).
FILE_LIMIT = 524288

T = TypeVar("T")


def socket_path(settings: Settings) -> Path:
    """The XML-RPC unix socket of this AMR_HOME's supervisord."""
    return settings.supervisor_dir / "supervisor.sock"


def conf_path(settings: Settings) -> Path:
    return settings.supervisor_dir / "supervisord.conf"


def include_dir(settings: Settings) -> Path:
    """Where node program files live: ``supervisor/conf.d/node-<name>.conf``."""
    return settings.supervisor_dir / "conf.d"


def pidfile_path(settings: Settings) -> Path:
    return settings.supervisor_dir / "logs" / "supervisord.pid"


def logfile_path(settings: Settings) -> Path:
    return settings.supervisor_dir / "logs" / "supervisord.log"


def client_for(settings: Settings) -> SupervisorClient:
    """A SupervisorClient for this AMR_HOME's supervisord."""
    return SupervisorClient(socket_path(settings))


def supervisord_running(settings: Settings) -> bool:
    """Whether this AMR_HOME's supervisord answers on its socket."""
    return client_for(settings).answers()


def _supervisord_command() -> list[str]:
    script = Path(sys.executable).parent / "supervisord"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("supervisord")
    if found and Path(found).parent == Path(sys.executable).parent:
        return [found]
    return [sys.executable, "-m", "supervisor.supervisord"]


def _mkdir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_supervisord_conf(settings: Settings, include_core_programs: bool = True) -> Path:
    """Create the supervisor directories (0700) and write supervisord.conf; return its path."""
    sock = socket_path(settings)
    if len(str(sock).encode()) >= 108:
        raise ConfigError(
            f"AMR_HOME {settings.home} is too long: the unix socket path {sock} exceeds 107 bytes"
        )
    for d in (
        settings.home,
        settings.supervisor_dir,
        include_dir(settings),
        pidfile_path(settings).parent,
        settings.logs_dir,
        settings.nodes_dir,
        settings.run_dir,
    ):
        _mkdir(d)
    try:
        text = render_supervisord_conf(
            home=str(settings.home),
            python=sys.executable,
            include_dir=str(include_dir(settings)),
            socket=str(sock),
            pidfile=str(pidfile_path(settings)),
            logfile=str(logfile_path(settings)),
            include_core_programs=include_core_programs,
            minfds=file_limit(),
            gateway_workers=settings.gateway.workers,
            private_network=settings.engine.private_network,
        )
    except ValueError as e:
        raise ConfigError(f"cannot run supervisord for AMR_HOME {settings.home}: {e}") from e
    conf = conf_path(settings)
    tmp = conf.with_suffix(".conf.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, conf)
    return conf


def _read_pid(settings: Settings) -> int | None:
    try:
        return int(pidfile_path(settings).read_text().strip())
    except (OSError, ValueError):
        return None


def _poll(condition: Callable[[], T], deadline: float, interval: float = 0.02) -> T | None:
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def file_limit(wanted: int = FILE_LIMIT) -> int:
    """The open-file limit to run with: ``wanted`` if this process may raise its hard limit that far
    (root with CAP_SYS_RESOURCE), else the hard limit, since supervisord refuses to start when it
    cannot reach its minfds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return wanted
    if hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, wanted))
            hard = wanted
        except (ValueError, OSError):
            log.info("open-file limit stays at %d (cannot raise the hard limit to %d)", hard, wanted)
    return min(wanted, hard)


def start_supervisord(
    settings: Settings,
    foreground: bool,
    include_core_programs: bool = True,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start this AMR_HOME's supervisord and return its pid.

    ``env`` is the environment of supervisord, and so of every program it runs (None: this process's).

    ``foreground=True`` replaces the current process with ``supervisord -n`` (does not return).
    Otherwise supervisord daemonizes itself and this returns once its socket answers.
    ``include_core_programs=False`` runs no api/gateway programs (tests of the node backend).
    Raises ConfigError if one is already running for this home or it does not come up in 10 s.
    """
    client = client_for(settings)
    if client.answers():
        pid = _read_pid(settings)
        raise ConfigError(
            f"supervisord is already running for AMR_HOME {settings.home}"
            + (f" (pid {pid})" if pid else "")
            + "; stop it first (amr supervisor stop)"
        )
    # A supervisord killed with SIGKILL leaves its programs running: stop them, or the new ones would
    # find their ports and sockets taken.
    stop_orphan_processes(settings, conf_path(settings))
    conf = write_supervisord_conf(settings, include_core_programs=include_core_programs)
    sock = socket_path(settings)
    if sock.exists() or sock.is_symlink():
        log.info("removing stale supervisor socket %s", sock)
        sock.unlink(missing_ok=True)
    argv = [*_supervisord_command(), "-c", str(conf)]
    if foreground:
        argv.insert(len(argv) - 2, "-n")
        if env is None:
            os.execv(argv[0], argv)
        os.execve(argv[0], argv, env)
    try:
        # supervisord forks and the parent exits at once; errors before that land on stderr.
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            cwd=settings.home,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"cannot start supervisord ({' '.join(argv)}): {e}") from e
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        raise ConfigError(
            f"supervisord failed to start (exit {proc.returncode}): {' '.join(reason[-3:]) or 'no output'}"
        )
    deadline = time.monotonic() + 10
    if not _poll(client.answers, deadline):
        raise ConfigError(f"supervisord did not answer on {sock} within 10 s; see {logfile_path(settings)}")
    try:
        return int(client.call_sync("getPID"))
    except (*UNREACHABLE_ERRORS, xmlrpc.client.Fault) as e:
        raise ConfigError(f"supervisord started but does not answer: {e}") from e


def restart_programs(settings: Settings, programs: tuple[str, ...]) -> bool:
    """Restart ``programs`` of this AMR_HOME's supervisord (each stopped, then started), so they read
    amr.toml again. Returns False if amr is not running."""
    client = client_for(settings)
    if not client.answers():
        return False
    try:
        for program in programs:
            client.call_sync("stopProcess", program, True)
            client.call_sync("startProcess", program, True)
    except xmlrpc.client.Fault as e:
        raise ConfigError(f"supervisord could not restart {program}: {e.faultString}") from e
    return True


def stop_supervisord(settings: Settings, timeout: float = 30) -> bool:
    """Shut this AMR_HOME's supervisord down (it stops every program first) and wait until it is gone.

    Returns False if it was not running. Raises ConfigError if it is still alive after ``timeout``.
    """
    client = client_for(settings)
    pid = _read_pid(settings)
    if not client.answers():
        return False
    try:
        pid = int(client.call_sync("getPID"))
        client.call_sync("shutdown")
    except xmlrpc.client.Fault as e:
        if e.faultCode != Faults.SHUTDOWN_STATE:
            raise ConfigError(f"supervisord refused to shut down: {e.faultString}") from e
    except UNREACHABLE_ERRORS:
        # It went away between the two calls; fall through to waiting for the pid.
        pass
    deadline = time.monotonic() + timeout
    if pid is not None and not _poll(lambda: not pid_alive(pid), deadline, 0.05):
        raise ConfigError(f"supervisord (pid {pid}) is still running {timeout:.0f} s after shutdown")
    _poll(lambda: not socket_path(settings).exists(), min(deadline, time.monotonic() + 2), 0.02)
    return True
