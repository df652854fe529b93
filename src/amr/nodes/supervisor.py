"""The process supervisor: starting supervisord for an AMR_HOME and talking to it over XML-RPC.

supervisord listens only on a unix socket (mode 0700) under ``AMR_HOME/supervisor``; amr talks to it
with ``SupervisorClient``. The blocking XML-RPC calls run in a worker thread, one fresh ServerProxy per
call, because ``xmlrpc.client.ServerProxy`` is not thread-safe.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection

from amr.errors import ConfigError, NodeError
from amr.logic.supervisor_conf import render_supervisord_conf
from amr.nodes.orphans import pid_alive, stop_orphan_processes
from amr.settings import Settings

log = logging.getLogger(__name__)

# Enough for the largest SKU's 200,000 connections through the gateway (two descriptors each).
FILE_LIMIT = 524288

T = TypeVar("T")

# Errors that mean "nobody answers on this socket" rather than "supervisord said no".
_UNREACHABLE = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, EOFError)


class _UnixConnection(UnixStreamHTTPConnection):  # type: ignore[misc]
    """supervisor's unix-socket HTTP connection, with a timeout so a hung supervisord cannot hang us."""

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socketfile)


@dataclass(frozen=True)
class ReloadResult:
    """What ``supervisor.reloadConfig`` found: group names added, changed and removed on disk."""

    added: list[str]
    changed: list[str]
    removed: list[str]


class SupervisorClient:
    """Async XML-RPC client of one supervisord over its unix socket.

    Every method raises NodeError when supervisord cannot be reached or refuses; the idempotent cases
    (starting a started process, stopping a stopped one, adding an added group, removing an absent
    one) succeed quietly.
    """

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = 60.0) -> None:
        self.socket_path = str(socket_path)
        # Long enough for stopProcess(wait=True), which waits up to a program's stopwaitsecs.
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------------------

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, "unix://" + self.socket_path)
        path, timeout = self.socket_path, self.timeout

        def connection() -> _UnixConnection:
            conn = _UnixConnection("localhost", timeout=timeout)
            conn.socketfile = path
            return conn

        transport._get_connection = connection
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def call_sync(self, method: str, *args: Any) -> Any:
        """Call one ``supervisor.<method>`` synchronously; raw Faults and OSErrors propagate."""
        proxy = self._proxy()
        try:
            return getattr(proxy.supervisor, method)(*args)
        finally:
            proxy("close")()

    async def _call(self, method: str, *args: Any, ok_faults: tuple[int, ...] = ()) -> Any:
        try:
            return await asyncio.to_thread(self.call_sync, method, *args)
        except xmlrpc.client.Fault as e:
            if e.faultCode in ok_faults:
                return None
            raise NodeError(f"supervisord refused {method}{_fmt_args(args)}: {e.faultString}") from e
        except _UNREACHABLE as e:
            raise NodeError(
                f"supervisord is not reachable on {self.socket_path} ({type(e).__name__}: {e}); "
                "is it running (amr supervisor start)?"
            ) from e

    # -- API ------------------------------------------------------------------------------------

    async def get_state(self) -> str:
        """supervisord's state name (RUNNING, RESTARTING, SHUTDOWN, FATAL)."""
        state = await self._call("getState")
        return str(state["statename"])

    async def get_pid(self) -> int:
        """supervisord's own pid."""
        return int(await self._call("getPID"))

    async def reload_config(self) -> ReloadResult:
        """Reread the configuration files; nothing is started or stopped by this alone."""
        result = await self._call("reloadConfig")
        added, changed, removed = result[0]
        return ReloadResult(list(added), list(changed), list(removed))

    async def add_process_group(self, name: str) -> bool:
        """Activate a group read by ``reload_config`` (autostart programs start). False if already added."""
        return await self._call("addProcessGroup", name, ok_faults=(Faults.ALREADY_ADDED,)) is not None

    async def remove_process_group(self, name: str) -> bool:
        """Forget a stopped group. False if there was no such group."""
        return await self._call("removeProcessGroup", name, ok_faults=(Faults.BAD_NAME,)) is not None

    async def start_process(self, name: str, wait: bool = False) -> bool:
        """Start a process. False if it was already started."""
        return await self._call("startProcess", name, wait, ok_faults=(Faults.ALREADY_STARTED,)) is not None

    async def stop_process(self, name: str, wait: bool = True) -> bool:
        """Stop a process (TERM, then KILL after stopwaitsecs). False if it was not running."""
        return await self._call("stopProcess", name, wait, ok_faults=(Faults.NOT_RUNNING,)) is not None

    async def get_process_info(self, name: str) -> dict[str, Any] | None:
        """supervisor's process info dict (statename, pid, spawnerr, exitstatus...), None if unknown."""
        info = await self._call("getProcessInfo", name, ok_faults=(Faults.BAD_NAME,))
        return dict(info) if info is not None else None

    async def get_all_process_info(self) -> list[dict[str, Any]]:
        """Process info of every process supervisord knows."""
        return [dict(i) for i in await self._call("getAllProcessInfo")]

    async def read_log_tail(self, name: str, length: int = 4096) -> str:
        """The last ``length`` bytes of a process' stdout log ("" if unknown or no log)."""
        result = await self._call(
            "tailProcessStdoutLog", name, 0, length, ok_faults=(Faults.BAD_NAME, Faults.NO_FILE)
        )
        return str(result[0]) if result is not None else ""

    async def shutdown(self) -> None:
        """Ask supervisord to stop every process and exit."""
        await self._call("shutdown", ok_faults=(Faults.SHUTDOWN_STATE,))

    def answers(self) -> bool:
        """Whether a supervisord answers on the socket (synchronous, for start/stop helpers)."""
        if not os.path.exists(self.socket_path):
            return False
        try:
            SupervisorClient(self.socket_path, timeout=5.0).call_sync("getState")
        except (*_UNREACHABLE, xmlrpc.client.Fault):
            return False
        return True


def _fmt_args(args: tuple[Any, ...]) -> str:
    return "(" + ", ".join(repr(a) for a in args) + ")"


# -- supervisord lifecycle ------------------------------------------------------------------------


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
    except (*_UNREACHABLE, xmlrpc.client.Fault) as e:
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
    except _UNREACHABLE:
        # It went away between the two calls; fall through to waiting for the pid.
        pass
    deadline = time.monotonic() + timeout
    if pid is not None and not _poll(lambda: not pid_alive(pid), deadline, 0.05):
        raise ConfigError(f"supervisord (pid {pid}) is still running {timeout:.0f} s after shutdown")
    _poll(lambda: not socket_path(settings).exists(), min(deadline, time.monotonic() + 2), 0.02)
    return True
