"""The local node backend: valkey-server processes on this host, kept alive by supervisord.

Each node has a directory ``AMR_HOME/nodes/<database>/<node>/`` holding ``valkey.conf`` (0600), its data
files and ``valkey.log`` (the engine logs to stdout; supervisord writes it there), and a supervisor
program file ``AMR_HOME/supervisor/conf.d/node-<name>.conf``. Nodes are added to and removed from the
running supervisord through XML-RPC, never by restarting it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from amr.errors import EngineUnreachable, NodeError
from amr.logic.render.supervisor_conf import NODE_PROGRAM_PREFIX, render_node_program, supervisor_program_name
from amr.logic.resp.engine_codec import is_error_reply, redact
from amr.logic.security.node_credentials import ADMIN_USER, CredentialMasters
from amr.model.node import NodeSpec, NodeStatus, ProcessState
from amr.nodes.admin import UnixValkeyAdmin
from amr.nodes.engine import find_server_binary
from amr.nodes.engine_client import EngineConnection
from amr.nodes.launch import LAUNCH_FILE, NODE_SECRETS_FILE, STARTED_MARKER
from amr.nodes.supervisor import SupervisorClient
from amr.nodes.supervisord import include_dir
from amr.settings import Settings

log = logging.getLogger(__name__)

REMOVE_ATTEMPTS = 40
# The RDB file valkey.conf names (dbfilename); a node loads it at start when AOF is off.
SNAPSHOT_NAME = "dump.rdb"

CONF_NAME = "valkey.conf"
LOG_NAME = "valkey.log"

_STATE_MAP = {
    "RUNNING": ProcessState.RUNNING,
    "STARTING": ProcessState.STARTING,
    "BACKOFF": ProcessState.STARTING,
    "STOPPED": ProcessState.STOPPED,
    "STOPPING": ProcessState.STOPPED,
    "EXITED": ProcessState.STOPPED,
    "FATAL": ProcessState.FAILED,
}
# Supervisor states in which a node that should be serving is not going to answer.
_DEAD_STATES = frozenset({"FATAL", "EXITED", "BACKOFF", "STOPPED"})
_NOT_RUNNING_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})

_POLL_INTERVAL = 0.01
# A fresh valkey-server answers within a few ms of its spawn: poll finer at first.
_FAST_POLL_INTERVAL = 0.002
_FAST_POLL_PERIOD = 0.1
# Checking the supervisor costs an XML-RPC round trip; PING is much cheaper, so check it less often.
_STATE_CHECK_INTERVAL = 0.05
_PING_TIMEOUT = 1.0


class LocalNodeBackend:
    """``NodeBackend`` for nodes on this host under supervisord. Every method is idempotent."""

    def __init__(self, settings: Settings, supervisor: SupervisorClient, masters: CredentialMasters) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self._masters = masters
        self.server_binary = find_server_binary(settings)
        # Serializes reloadConfig/addProcessGroup/removeProcessGroup sequences of this backend.
        self._lock = asyncio.Lock()

    # -- paths ------------------------------------------------------------------------------------

    def program_file(self, name: str) -> Path:
        """The supervisor program file of node ``name``."""
        return include_dir(self._settings) / f"{_program(name)}.conf"

    @staticmethod
    def log_file(directory: str) -> Path:
        """Where the node's engine log goes."""
        return Path(directory) / LOG_NAME

    # -- NodeBackend --------------------------------------------------------------------------------

    async def ensure_node(self, spec: NodeSpec) -> None:
        """Write the node's files if they changed, register it with supervisord and start it if it is
        not running. A running node is never restarted."""
        program = _program(spec.name)
        try:
            program_text = render_node_program(
                spec, self.server_binary, str(self.log_file(spec.directory)), sys.executable
            )
        except ValueError as e:
            raise NodeError(f"node {spec.name}: {e}") from e
        try:
            conf_changed, program_changed = await asyncio.to_thread(self._write_files, spec, program_text)
        except OSError as e:
            raise NodeError(f"node {spec.name}: cannot write its files: {e}") from e
        async with self._lock:
            info = await self._supervisor.get_process_info(program)
            if info is None:
                await self._supervisor.reload_config()
                await self._supervisor.add_process_group(program)  # autostart spawns it
                log.info("node %s registered and started", spec.name, extra={"node": spec.name})
                return
            state = str(info["statename"])
            if program_changed and state in _NOT_RUNNING_STATES:
                # supervisord keeps a group's config in memory: re-add it to pick up the new one.
                await self._supervisor.reload_config()
                await self._supervisor.remove_process_group(program)
                await self._supervisor.add_process_group(program)
                log.info("node %s re-registered with a new program config", spec.name)
                return
            if program_changed:
                log.info(
                    "node %s: program config changed; it applies when the node is next re-added", spec.name
                )
            if state in _NOT_RUNNING_STATES:
                await self._supervisor.start_process(program, wait=False)
                log.info("node %s was %s; started", spec.name, state)
            elif conf_changed:
                log.info("node %s: valkey.conf changed; running node not restarted", spec.name)

    async def node_status(self, name: str) -> NodeStatus:
        """The supervisor's view of the node's process."""
        info = await self._supervisor.get_process_info(_program(name))
        if info is None:
            return NodeStatus(name=name, state=ProcessState.ABSENT)
        return _status(name, info)

    async def snapshot_exists(self, spec: NodeSpec) -> bool:
        return await asyncio.to_thread((Path(spec.directory) / SNAPSHOT_NAME).exists)

    async def remove_snapshot(self, spec: NodeSpec) -> None:
        try:
            await asyncio.to_thread((Path(spec.directory) / SNAPSHOT_NAME).unlink, True)
        except OSError as e:
            raise NodeError(f"node {spec.name}: cannot delete its old snapshot: {e}") from e

    async def read_config(self, spec: NodeSpec) -> str | None:
        """The node's valkey.conf as it is on disk now; None if there is none or it cannot be read."""
        try:
            return await asyncio.to_thread((Path(spec.directory) / CONF_NAME).read_text)
        except (OSError, UnicodeDecodeError):
            return None

    async def list_nodes(self) -> list[NodeStatus]:
        """Every node program supervisord runs (``node-*``)."""
        out = []
        for info in await self._supervisor.get_all_process_info():
            pname = str(info.get("name", ""))
            if pname.startswith(NODE_PROGRAM_PREFIX) and info.get("group") == pname:
                out.append(_status(pname[len(NODE_PROGRAM_PREFIX) :], info))
        return sorted(out, key=lambda s: s.name)

    async def list_node_directories(self) -> dict[str, str]:
        """Every ``nodes/<database>/<node>`` directory, by node name."""
        return await asyncio.to_thread(_node_directories, self._settings.nodes_dir)

    async def wait_ready(self, spec: NodeSpec, timeout: float) -> None:
        """Poll until the node answers PING as the admin user; raise NodeError with the engine's reason
        (the tail of its log) if its process dies or the deadline passes."""
        program = _program(spec.name)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        # The first check waits a little: a fresh node usually answers before an XML-RPC round trip.
        next_state_check = start + _STATE_CHECK_INTERVAL / 2
        last_error = "not started"
        first_pid = 0
        while True:
            last_error = await self._ping(spec)
            if not last_error:
                log.debug("node %s ready after %.1f ms", spec.name, (loop.time() - start) * 1000)
                return
            now = loop.time()
            if now >= next_state_check or now >= deadline:
                next_state_check = now + _STATE_CHECK_INTERVAL
                info = await self._supervisor.get_process_info(program)
                state = "ABSENT" if info is None else str(info["statename"])
                pid = int(info.get("pid") or 0) if info is not None else 0
                first_pid = first_pid or pid
                if pid and pid != first_pid:
                    # The process died and the supervisor already started it again (it restarts a
                    # crashing node at once), so the dead state itself may never be seen.
                    state = "EXITED"
                if state in _DEAD_STATES or state == "ABSENT":
                    # It may have become ready between the PING and the state check.
                    if state not in ("ABSENT", "STOPPED") and not await self._ping(spec):
                        return
                    raise NodeError(self._failure_message(spec, state, info, last_error))
                if now >= deadline:
                    raise NodeError(self._failure_message(spec, state, info, last_error, timed_out=timeout))
            fast = loop.time() - start < _FAST_POLL_PERIOD
            await asyncio.sleep(_FAST_POLL_INTERVAL if fast else _POLL_INTERVAL)

    async def runs_current_binary(self, name: str, directory: str) -> bool | None:
        # The launcher names the binary it execs in the node's marker file: the configured path, so a
        # wrapper script or a symlink compares as what the settings say, not as what the kernel runs.
        try:
            started = await asyncio.to_thread((Path(directory) / STARTED_MARKER).read_text)
        except OSError:
            return None
        return started.strip() == self.server_binary if started.strip() else None

    async def restart_node(self, name: str) -> None:
        """Stop the node's process (TERM, as supervisord stops it) and start it again. supervisord keeps
        a program's config in memory, so one that changed on disk (a new engine binary) is re-added,
        which starts it with the new config."""
        program = _program(name)
        if await self._supervisor.get_process_info(program) is None:
            raise NodeError(f"node {name} is not registered with the supervisor, so it cannot be restarted")
        await self._supervisor.stop_process(program, wait=True)
        async with self._lock:
            reloaded = await self._supervisor.reload_config()
            if program in reloaded.changed:
                await self._supervisor.remove_process_group(program)
                await self._supervisor.add_process_group(program)  # autostart spawns it
                log.info("node %s restarted with its new program config", name, extra={"node": name})
                return
            await self._supervisor.start_process(program, wait=False)
        log.info("node %s restarted", name, extra={"node": name})

    async def remove_node(self, name: str, directory: str) -> None:
        """Stop the node, unregister it from supervisord, delete its program file, its directory and
        its unix socket. Removing an absent node succeeds."""
        program = _program(name)
        node_dir = Path(directory)
        self._check_under_nodes_dir(node_dir)
        sock = await asyncio.to_thread(_configured_socket, node_dir / CONF_NAME)
        async with self._lock:
            await self._stop_and_unregister(program)
            self.program_file(name).unlink(missing_ok=True)
            await self._supervisor.reload_config()
        try:
            await asyncio.to_thread(_remove_tree, node_dir)
            if sock:
                Path(sock).unlink(missing_ok=True)
        except OSError as e:
            raise NodeError(f"node {name}: cannot delete {node_dir}: {e}") from e
        log.info("node %s removed", name, extra={"node": name})

    async def _stop_and_unregister(self, program: str) -> None:
        # A node in a restart loop (a bad config) can be respawned by supervisord between our stop
        # and our remove (STILL_RUNNING): stop it again until the removal takes.
        for attempt in range(REMOVE_ATTEMPTS):
            if await self._supervisor.get_process_info(program) is None:
                return
            await self._supervisor.stop_process(program, wait=True)
            try:
                await self._supervisor.remove_process_group(program)
                return
            except NodeError as e:
                if "STILL_RUNNING" not in str(e) or attempt == REMOVE_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(0.05)

    def admin(self, spec: NodeSpec, decode: bool = True) -> UnixValkeyAdmin:
        """An admin connection to the node over its unix socket."""
        return UnixValkeyAdmin(
            spec.socket,
            ADMIN_USER,
            self._masters.admin_for(spec.database_uid),
            decode=decode,
            legacy_password=self._masters.admin,
        )

    # -- helpers ------------------------------------------------------------------------------------

    def _write_files(self, spec: NodeSpec, program_text: str) -> tuple[bool, bool]:
        node_dir = Path(spec.directory)
        node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(node_dir, 0o700)
        conf_changed = _write_if_changed(node_dir / CONF_NAME, spec.config)
        # What the launcher needs in clear, for this database only: the replication password (the
        # engine gets it through its standard input, never in valkey.conf) and the probe's.
        credentials = self._masters.for_database(spec.database_uid)
        _write_if_changed(
            node_dir / NODE_SECRETS_FILE,
            json.dumps({"replication": credentials.replication, "ha": credentials.ha}) + "\n",
        )
        launch = {
            "host": spec.internal_host,
            "port": spec.port,
            "peers": list(spec.peers),
            "cluster": spec.cluster_mode,
            "rejoin_wait_ms": spec.rejoin_wait_ms,
            # The node joins amr's private network first (amr.nodes.netns); "" runs it on the host's.
            "private_network": str(self._settings.run_dir) if self._settings.engine.private_network else "",
        }
        _write_if_changed(node_dir / LAUNCH_FILE, json.dumps(launch, sort_keys=True) + "\n")
        program_file = self.program_file(spec.name)
        program_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        program_changed = _write_if_changed(program_file, program_text)
        return conf_changed, program_changed

    def _check_under_nodes_dir(self, node_dir: Path) -> None:
        nodes = self._settings.nodes_dir.resolve()
        target = node_dir.resolve()
        if target == nodes or nodes not in target.parents:
            raise NodeError(f"refusing to delete {node_dir}: it is not a node directory under {nodes}")

    async def _ping(self, spec: NodeSpec) -> str:
        """AUTH as the admin user and PING; "" when the node answers PONG, else why not (yet).

        A rejected password raises NodeError at once: waiting would not change it."""
        try:
            return await asyncio.wait_for(self._ping_once(spec), _PING_TIMEOUT)
        except TimeoutError:
            return "PING timed out"
        except EngineUnreachable as e:
            cause = e.__cause__ or e
            return f"{type(cause).__name__}: {cause}"

    async def _ping_once(self, spec: NodeSpec) -> str:
        connection = await EngineConnection.open(spec.socket, decode=True)
        try:
            auth: object = ""
            pong: object = ""
            # The node's own password, or (a node an older amr started) the master itself, which
            # was every node's admin password then; convergence replaces it.
            for password in (self._masters.admin_for(spec.database_uid), self._masters.admin):
                auth, pong = await connection.send([("AUTH", ADMIN_USER, password), ("PING",)])
                if not is_error_reply(auth):
                    break
        finally:
            connection.close()
        if is_error_reply(auth) and str(auth).startswith(("WRONGPASS", "NOPERM")):
            raise NodeError(f"node {spec.name} rejected the admin user: {redact(str(auth))}")
        if is_error_reply(auth) or auth != "OK":
            return f"AUTH answered {redact(_reply_line(auth))!r}"
        if is_error_reply(pong) or pong != "PONG":
            return f"PING answered {redact(_reply_line(pong))!r}"
        return ""

    def _failure_message(
        self,
        spec: NodeSpec,
        state: str,
        info: dict[str, Any] | None,
        last_error: str,
        timed_out: float | None = None,
    ) -> str:
        if timed_out is not None:
            head = f"node {spec.name} did not answer PING within {timed_out:g} s (process {state})"
        else:
            head = f"node {spec.name} is not running (process {state})"
        details = []
        if info is not None:
            if info.get("spawnerr"):
                details.append(str(info["spawnerr"]))
            elif state in ("EXITED", "BACKOFF", "FATAL") and info.get("exitstatus") is not None:
                details.append(f"exit status {info['exitstatus']}")
        reason = engine_reason(_read_tail(self.log_file(spec.directory)))
        if reason:
            details.append(f"engine said: {reason}")
        elif last_error:
            details.append(f"last attempt: {last_error}")
        return head + (": " + "; ".join(details) if details else "")


def _program(name: str) -> str:
    try:
        return supervisor_program_name(name)
    except ValueError as e:
        raise NodeError(str(e)) from e


def _status(name: str, info: dict[str, Any]) -> NodeStatus:
    statename = str(info.get("statename", ""))
    state = _STATE_MAP.get(statename, ProcessState.FAILED)
    pid = int(info.get("pid") or 0) or None
    description = str(info.get("spawnerr") or info.get("description") or statename)
    return NodeStatus(name=name, state=state, pid=pid, description=description)


def _reply_line(reply: object) -> str:
    """A short reply as the engine wrote it (``-ERR ...``, ``+OK``), for messages."""
    return f"-{reply}" if is_error_reply(reply) else f"+{reply}"


def _write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` (mode 0600) with ``text`` unless it already holds it."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _node_directories(nodes_dir: Path) -> dict[str, str]:
    out = {}
    try:
        databases = [d for d in nodes_dir.iterdir() if d.is_dir()]
    except FileNotFoundError:
        return {}
    for database in databases:
        try:
            out.update({n.name: str(n) for n in database.iterdir() if n.is_dir()})
        except FileNotFoundError:
            continue  # removed meanwhile
    return out


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def _configured_socket(conf: Path) -> str | None:
    """The ``unixsocket`` a valkey.conf names, if any (to delete it with the node)."""
    try:
        text = conf.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "unixsocket":
            return parts[1].strip().strip('"')
    return None


def _read_tail(path: Path, size: int = 16384) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# Warnings valkey prints at every start on many hosts; they never explain a failure.
_NOISE = ("Memory overcommit must be enabled", "Transparent Huge Pages", "TCP backlog setting")
_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ (?P<level>[.\-*#]) (?P<msg>.*)$")


def engine_reason(log_text: str, max_lines: int = 4) -> str:
    """The lines of a node's log that say why it failed: the FATAL CONFIG FILE ERROR block of the
    last start, or else the warnings ('#') logged since the last start. Passwords are redacted."""
    lines = [ln.rstrip() for ln in log_text.splitlines() if ln.strip()]
    fatal = max((i for i, ln in enumerate(lines) if "FATAL CONFIG FILE ERROR" in ln), default=-1)
    start = max((i for i, ln in enumerate(lines) if "oO0OoO0OoO0Oo" in ln), default=-1)
    if fatal > start:
        block = [ln for ln in lines[fatal + 1 :] if not ln.startswith("***")][:max_lines]
        return redact(" | ".join(block))
    warnings = []
    for ln in lines[start + 1 :] if start >= 0 else lines:
        m = _LOG_LINE.match(ln)
        if m and m.group("level") == "#" and not any(n in ln for n in _NOISE):
            warnings.append(m.group("msg"))
    return redact(" | ".join(warnings[-max_lines:]))
