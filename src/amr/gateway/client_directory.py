"""The tenant clients one gateway process serves, and what its CLIENT LIST/INFO/KILL answers need.

Spliced connections (NoCluster, OSSCluster) are known by their engine client id on their node
(the gateway asks CLIENT ID as it authenticates), with the TCP peer and public address the gateway
saw; EnterpriseCluster connections by an id of the gateway's own. A CLIENT command answered on one
worker covers the clients of every worker: the others are asked over their peer sockets
(``amr.gateway.peers``). The engine is asked as the internal ``amr-gateway`` user, one connection
per node, used by one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from amr.errors import NodeError
from amr.gateway.peers import PeerServer, ask_peers
from amr.logic.dataplane.client_admin import ClientEntry, parse_client_list
from amr.logic.resp.engine_codec import Command
from amr.logic.security.node_credentials import GATEWAY_USER
from amr.nodes.engine_client import EngineConnection

log = logging.getLogger(__name__)

ENGINE_TIMEOUT = 5.0
# EnterpriseCluster ids: a counter times this plus the worker's index, unique across workers.
_ID_STRIDE = 1024


class GatewayClient(Protocol):
    """A client connection as the directory sees it (``amr.gateway.splice.ClientSide``)."""

    def close_for(self, reason: str) -> None: ...


class RoutedClient(GatewayClient, Protocol):
    """An EnterpriseCluster client: it describes itself as a CLIENT LIST entry."""

    def describe(self) -> ClientEntry: ...


@dataclass(frozen=True, slots=True)
class Spliced:
    """A spliced client: its address, the public address it reached, and its connection."""

    addr: str
    laddr: str
    client: GatewayClient


class ClientDirectory:
    """This process's tenant clients (see the module docstring). ``password_for(socket)`` is the
    ``amr-gateway`` password on that node ("" to ask without AUTH)."""

    def __init__(
        self,
        password_for: Callable[[str], str],
        worker: int = 0,
        workers: int = 1,
        run_dir: Path | None = None,
        stats: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.password_for = password_for
        # This process's counters per database, for `amr monitord`'s "stats" question.
        self.stats = stats or dict
        self.worker = worker
        self.workers = workers if run_dir is not None else 1
        self.run_dir = run_dir
        self.spliced: dict[str, dict[int, Spliced]] = {}
        self.routed: dict[str, dict[int, RoutedClient]] = {}
        self._next_id = 0
        self._engines: dict[str, tuple[asyncio.Lock, list[EngineConnection]]] = {}
        self._server: PeerServer | None = None

    # -- this process's clients -------------------------------------------------------------------

    def add_spliced(self, socket: str, node_id: int, entry: Spliced) -> None:
        self.spliced.setdefault(socket, {})[node_id] = entry

    def remove_spliced(self, socket: str, node_id: int) -> None:
        _drop(self.spliced, socket, node_id)

    def new_routed_id(self) -> int:
        self._next_id += 1
        return self._next_id * _ID_STRIDE + self.worker % _ID_STRIDE

    def add_routed(self, database: str, client_id: int, client: RoutedClient) -> None:
        self.routed.setdefault(database, {})[client_id] = client

    def remove_routed(self, database: str, client_id: int) -> None:
        _drop(self.routed, database, client_id)

    def local_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """A peer's question about this process's clients (``amr.gateway.peers``)."""
        op = request.get("op")
        if op == "stats":
            return self.stats()
        if op == "spliced":
            clients = self.spliced.get(str(request.get("socket")), {})
            return {"clients": [[i, c.addr, c.laddr] for i, c in clients.items()]}
        database = str(request.get("database"))
        if op == "routed":
            return {"lines": [c.describe().render() for c in self.routed.get(database, {}).values()]}
        if op == "close":
            return {"closed": self._close_local(database, {int(i) for i in request.get("ids", [])})}
        return {}

    def _close_local(self, database: str, ids: set[int]) -> int:
        clients = self.routed.get(database, {})
        victims = [(i, clients[i]) for i in ids if i in clients]
        for client_id, client in victims:
            # Gone from the lists at once, as the engine drops a client it kills (the connection
            # itself closes once what was written to it is flushed).
            _drop(self.routed, database, client_id)
            client.close_for("client_killed")
        return len(victims)

    # -- every worker's clients -----------------------------------------------------------------------

    async def known_spliced(self, socket: str) -> dict[int, tuple[str, str]]:
        """Engine id -> (addr, laddr) of every worker's spliced clients on node ``socket``."""
        known = {i: (c.addr, c.laddr) for i, c in self.spliced.get(socket, {}).items()}
        for answer in await self._ask({"op": "spliced", "socket": socket}):
            for row in answer.get("clients", []):
                known[int(row[0])] = (str(row[1]), str(row[2]))
        return known

    async def routed_entries(self, database: str) -> list[ClientEntry]:
        """Every worker's EnterpriseCluster clients of ``database``, oldest id first."""
        entries = [c.describe() for c in self.routed.get(database, {}).values()]
        for answer in await self._ask({"op": "routed", "database": database}):
            entries += parse_client_list("\n".join(str(line) for line in answer.get("lines", [])))
        return sorted(entries, key=lambda e: e.id)

    async def close_routed(self, database: str, ids: Sequence[int]) -> int:
        """Close these EnterpriseCluster clients, wherever they are; how many were closed."""
        closed = self._close_local(database, set(ids))
        if len(ids) > closed:
            for answer in await self._ask({"op": "close", "database": database, "ids": list(ids)}):
                closed += int(answer.get("closed", 0))
        return closed

    async def _ask(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        if self.workers <= 1 or self.run_dir is None:
            return []
        return await ask_peers(self.run_dir, self.worker, self.workers, request)

    # -- the engine -------------------------------------------------------------------------------------

    async def engine(self, socket: str, commands: Sequence[Command]) -> list[object]:
        """Run ``commands`` on node ``socket`` as ``amr-gateway``; replies in order, error replies
        as values. Raise NodeError if the node cannot be asked."""
        lock, idle = self._engines.setdefault(socket, (asyncio.Lock(), []))
        async with lock:
            for attempt in range(2):
                if not idle:
                    idle.append(
                        await EngineConnection.open(
                            socket, GATEWAY_USER, self.password_for(socket), timeout=ENGINE_TIMEOUT
                        )
                    )
                try:
                    return await idle[0].send(commands)
                except NodeError:
                    idle.clear()  # it broke (a restarted node): one more try on a new connection
                    if attempt:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def forget_nodes(self, sockets: Sequence[str]) -> None:
        """These nodes are no longer served (their route went away): close the connections to them."""
        for socket in sockets:
            _, idle = self._engines.pop(socket, (None, []))
            for connection in idle:
                connection.close()

    # -- life cycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Answer the other workers' questions, and `amr monitord`'s."""
        if self.run_dir is not None:
            self._server = PeerServer(self.run_dir, self.worker, self.local_answer)
            await self._server.start()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None
        for _, idle in self._engines.values():
            for connection in idle:
                connection.close()
        self._engines.clear()


def _drop(table: dict[str, dict[int, Any]], key: str, client_id: int) -> None:
    """Forget a client (and its node's or database's entry with its last one)."""
    clients = table.get(key)
    if clients is not None:
        clients.pop(client_id, None)
        if not clients:
            del table[key]
