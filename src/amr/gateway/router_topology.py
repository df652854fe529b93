"""The slot map of one EnterpriseCluster database port, kept fresh for the router's connections.

Read from a node with ``CLUSTER SLOTS`` over a short connection as the internal ``amr-gateway`` user,
every ``REFRESH_INTERVAL`` in the background, and at once when a router saw MOVED or lost a node
connection. The command key table (``COMMAND INFO``) is read the first time and kept for the whole
process in the gateway context. The hot path only reads ``slot_map``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from amr.errors import NodeError
from amr.gateway.context import GatewayContext
from amr.logic.dataplane.cluster_slots import SlotMap, empty_slot_map, parse_cluster_slots
from amr.logic.dataplane.command_routing import CommandTable, parse_command_table
from amr.logic.security.node_credentials import GATEWAY_USER
from amr.model.routes import ClusterNode
from amr.nodes.engine_client import EngineConnection

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0
RETRY_INTERVAL = 0.1
FETCH_TIMEOUT = 2.0
# Connections waiting for the first slot map get an error after this many failed reads.
READY_ATTEMPTS = 30
NOT_READY_REPLY = b"-CLUSTERDOWN the gateway cannot read the slot map yet\r\n"


class ClusterTopology:
    """Slot map and command table for the router connections of one listener."""

    def __init__(self, nodes: tuple[ClusterNode, ...], ctx: GatewayContext) -> None:
        self.nodes = nodes
        self.ctx = ctx
        self.slot_map: SlotMap = empty_slot_map()
        self.ready = False
        self.failed_attempts = 0
        self._waiters: list[Callable[[bool], None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error = ""
        # One connection per node, kept between reads: `amr monitord` follows amr's connections to
        # leave their commands out of the database's metrics, and cannot see one that opens and
        # closes between two of its samples.
        self._connections: dict[str, EngineConnection] = {}

    @property
    def commands(self) -> CommandTable:
        return self.ctx.command_table or {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter(False)
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            connection.close()

    def socket_for_port(self, port: int) -> str | None:
        """The socket of the node announcing ``port`` (in MOVED and ASK replies)."""
        for node in self.nodes:
            if node.port == port:
                return node.socket
        return None

    def set_nodes(self, nodes: tuple[ClusterNode, ...]) -> None:
        """The route's node list changed: read the map again with it."""
        self.nodes = nodes
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Read the slot map now rather than at the next interval (after MOVED or a lost node)."""
        self._wake.set()

    def when_ready(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(True)`` once a slot map is known, or ``callback(False)`` if it cannot be read."""
        if self.ready:
            callback(True)
            return
        self._waiters.append(callback)
        self.start()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            ok = await self._refresh()
            if ok:
                self.failed_attempts = 0
                if not self.ready:
                    self.ready = True
                    self._notify(True)
            else:
                self.failed_attempts += 1
                if not self.ready and self.failed_attempts >= READY_ATTEMPTS:
                    self._notify(False)
            interval = REFRESH_INTERVAL if ok else RETRY_INTERVAL
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    def _notify(self, ok: bool) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            try:
                waiter(ok)
            except Exception:  # one connection's bug must not stop the others from starting
                log.exception("router connection failed to start")

    async def _refresh(self) -> bool:
        errors = []
        for node in self.nodes:
            try:
                async with asyncio.timeout(FETCH_TIMEOUT):
                    slot_map = await self._fetch(node)
            except (NodeError, TimeoutError, ValueError) as e:
                errors.append(f"{node.socket}: {type(e).__name__} {e}")
                continue
            if not slot_map.primaries:
                errors.append(f"{node.socket}: no slots served yet")
                continue
            if self._error:
                log.info("slot map readable again from %s", node.socket)
                self._error = ""
            self.slot_map = slot_map
            return True
        message = "; ".join(errors) or "no nodes"
        if message != self._error:
            log.warning("cannot read the slot map: %s", message)
            self._error = message
        return False

    async def _fetch(self, node: ClusterNode) -> SlotMap:
        connection = self._connections.pop(node.socket, None)
        if connection is None or connection.broken:
            password = self.ctx.node_password_for(node.socket) if self.ctx.node_password else ""
            connection = await EngineConnection.open(node.socket, GATEWAY_USER, password)
        try:
            if self.ctx.command_table is None:
                self.ctx.command_table = parse_command_table(await connection.execute("COMMAND", "INFO"))
            slot_map = parse_cluster_slots(await connection.execute("CLUSTER", "SLOTS"), self.nodes)
        except BaseException:
            connection.abort()  # timed out or cancelled halfway: replies may still be owed
            raise
        self._connections[node.socket] = connection
        return slot_map
