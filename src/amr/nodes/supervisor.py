"""The process supervisor's client: talking to a running supervisord over XML-RPC.

supervisord listens only on a unix socket (mode 0700) under ``AMR_HOME/supervisor``; amr talks to it
with ``SupervisorClient``. The blocking XML-RPC calls run in a worker thread, one fresh ServerProxy per
call, because ``xmlrpc.client.ServerProxy`` is not thread-safe. Starting and stopping supervisord
itself is ``amr.nodes.supervisord``'s.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import xmlrpc.client
from dataclasses import dataclass
from typing import Any

from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection

from amr.errors import NodeError

# Errors that mean "nobody answers on this socket" rather than "supervisord said no".
UNREACHABLE_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, EOFError)


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
        except UNREACHABLE_ERRORS as e:
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
        except (*UNREACHABLE_ERRORS, xmlrpc.client.Fault):
            return False
        return True


def _fmt_args(args: tuple[Any, ...]) -> str:
    return "(" + ", ".join(repr(a) for a in args) + ")"
