"""The local node backend: valkey-server processes on this host, kept alive by supervisord.

Each node has a directory ``AMR_HOME/nodes/<database>/<node>/`` holding ``valkey.conf`` (0600), its data
files and ``valkey.log`` (the engine logs to stdout; supervisord writes it there), and a supervisor
program file ``AMR_HOME/supervisor/conf.d/node-<name>.conf``. Nodes are added to and removed from the
running supervisord through XML-RPC, never by restarting it. Writing those files is
``amr.nodes.node_files``'s; waiting for a node to answer is ``amr.nodes.readiness``'s.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from amr.errors import NodeError
from amr.logic.render.supervisor_conf import NODE_PROGRAM_PREFIX, render_node_program, supervisor_program_name
from amr.logic.security.node_credentials import ADMIN_USER, CredentialMasters
from amr.model.node import NodeSpec, NodeStatus, ProcessState
from amr.nodes.admin import UnixValkeyAdmin
from amr.nodes.engine import engine_version, find_server_binary
from amr.nodes.launch import STARTED_MARKER
from amr.nodes.node_files import (
    CONF_NAME,
    LOG_NAME,
    SNAPSHOT_NAME,
    check_under_nodes_dir,
    configured_socket,
    node_directories,
    remove_tree,
    write_node_files,
)
from amr.nodes.readiness import ReadinessProbe
from amr.nodes.supervisor import SupervisorClient
from amr.nodes.supervisord import include_dir
from amr.settings import Settings

log = logging.getLogger(__name__)

REMOVE_ATTEMPTS = 40

_STATE_MAP = {
    "RUNNING": ProcessState.RUNNING,
    "STARTING": ProcessState.STARTING,
    "BACKOFF": ProcessState.STARTING,
    "STOPPED": ProcessState.STOPPED,
    "STOPPING": ProcessState.STOPPED,
    "EXITED": ProcessState.STOPPED,
    "FATAL": ProcessState.FAILED,
}
_NOT_RUNNING_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})


class LocalNodeBackend:
    """``NodeBackend`` for nodes on this host under supervisord. Every method is idempotent."""

    def __init__(self, settings: Settings, supervisor: SupervisorClient, masters: CredentialMasters) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self._masters = masters
        self.server_binary = find_server_binary(settings)
        self.engine_version = engine_version(self.server_binary)
        self._readiness = ReadinessProbe(supervisor, masters)
        # Serializes reloadConfig/addProcessGroup/removeProcessGroup sequences of this backend.
        self._lock = asyncio.Lock()
        self._admins: dict[tuple[str, bool], UnixValkeyAdmin] = {}

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
        private_network = str(self._settings.run_dir) if self._settings.engine.private_network else ""
        try:
            conf_changed, program_changed = await asyncio.to_thread(
                write_node_files,
                spec,
                self._masters.for_database(spec.database_uid),
                private_network,
                self.program_file(spec.name),
                program_text,
            )
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
        return await asyncio.to_thread(node_directories, self._settings.nodes_dir)

    async def wait_ready(self, spec: NodeSpec, timeout: float) -> None:
        """Poll until the node answers PING as the admin user; raise NodeError with the engine's reason
        (the tail of its log) if its process dies or the deadline passes."""
        await self._readiness.wait_ready(spec, _program(spec.name), self.log_file(spec.directory), timeout)

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
        check_under_nodes_dir(self._settings.nodes_dir, node_dir)
        sock = await asyncio.to_thread(configured_socket, node_dir / CONF_NAME)
        async with self._lock:
            await self._stop_and_unregister(program)
            self.program_file(name).unlink(missing_ok=True)
            await self._supervisor.reload_config()
        self._release_admins(name)
        try:
            await asyncio.to_thread(remove_tree, node_dir)
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
        """An admin connection to the node over its unix socket, kept open between passes: the metric
        collector subtracts amr's own commands by following amr's connections from sample to
        sample (amr.logic.metrics.deltas), and a connection opened and closed between two samples
        would take its commands out of sight (they would count as a tenant's)."""
        key = (spec.socket, decode)
        admin = self._admins.get(key)
        if admin is None:
            admin = self._admins[key] = UnixValkeyAdmin(
                spec.socket,
                ADMIN_USER,
                self._masters.admin_for(spec.database_uid),
                decode=decode,
                legacy_password=self._masters.admin,
                kept=True,
            )
        return admin

    def _release_admins(self, name: str) -> None:
        """Close the kept connections to node ``name`` (``<name>.sock``), which is going away."""
        for key in [k for k in self._admins if Path(k[0]).name == f"{name}.sock"]:
            self._admins.pop(key).release()


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
