"""The NodeBackend interface: everything above it is blind to where nodes run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from amr.model.node import EngineVersion, NodeSpec, NodeStatus


class ValkeyAdmin(Protocol):
    """An authenticated admin connection to one node (the internal admin user)."""

    async def execute(self, *args: str | int | bytes) -> object:
        """Run one command and return its reply as redis-py shaped it (INFO as a dict: see
        amr.logic.resp.engine_codec); raise NodeError on failure (an EngineError for an error reply)."""
        ...

    async def pipeline(self, commands: Sequence[Sequence[str | int | bytes]]) -> list[object]:
        """Send ``commands`` in one round trip (no transaction) and return their replies in order;
        raise NodeError if any of them failed (after all of them ran)."""
        ...

    async def close(self) -> None: ...


class NodeBackend(Protocol):
    """Runs nodes. Every method is idempotent."""

    # The engine that nodes started from now on run (None: it cannot be told), for the settings only
    # some engines know.
    engine_version: EngineVersion | None

    async def ensure_node(self, spec: NodeSpec) -> None:
        """Create the node directory (0700), write valkey.conf if it changed, register the node with
        the supervisor and start it if it is not running. A running node is never restarted."""
        ...

    async def node_status(self, name: str) -> NodeStatus:
        """The supervisor's view of the node's process."""
        ...

    async def snapshot_exists(self, spec: NodeSpec) -> bool:
        """Whether the node has an RDB snapshot on disk (what it would load when it starts)."""
        ...

    async def remove_snapshot(self, spec: NodeSpec) -> None:
        """Delete the node's RDB snapshot, if any."""
        ...

    async def read_config(self, spec: NodeSpec) -> str | None:
        """The node's valkey.conf as it is on disk now; None if there is none or it cannot be read."""
        ...

    async def list_nodes(self) -> list[NodeStatus]:
        """Every node the backend runs (to find strays)."""
        ...

    async def list_node_directories(self) -> dict[str, str]:
        """Every node directory on disk, by node name (to find strays a crash left behind)."""
        ...

    async def wait_ready(self, spec: NodeSpec, timeout: float) -> None:
        """Poll until the node answers PING as the admin user. If its process exits or the
        deadline passes, raise NodeError with the engine's reason (the tail of its log)."""
        ...

    async def remove_node(self, name: str, directory: str) -> None:
        """Stop the node, unregister it from the supervisor and delete its directory."""
        ...

    async def runs_current_binary(self, name: str, directory: str) -> bool | None:
        """Whether the node (in ``directory``) was last started with the engine binary the settings
        name now (False after ``engine.server_binary`` changed); None when it cannot be told."""
        ...

    async def restart_node(self, name: str) -> None:
        """Stop the node's process and start it again, with the program config on disk (a new engine
        binary, say). Returns once the new process is spawned; wait_ready tells when it answers.
        Raises NodeError if the node is not registered or does not start."""
        ...

    def admin(self, spec: NodeSpec, decode: bool = True) -> ValkeyAdmin:
        """An admin connection to the node over its unix socket. ``decode=False`` answers bytes (keys
        that are not UTF-8, as slot migration moves them)."""
        ...
