"""Socketless doubles for the router tests: a transport that records writes, and a router wired to
one node through such transports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from amr.gateway.router_budget import RequestBudget
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.router import Router
from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import CommandTable


class FakeTransport:
    """An asyncio transport that keeps what is written and whether reading is paused."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.written))

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closing = True

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass


def router_on_one_node(
    commands: CommandTable | None = None, budget: RequestBudget | None = None
) -> tuple[Router, FakeTransport, FakeTransport, list[str]]:
    client_t, node_t = FakeTransport(), FakeTransport()
    closed: list[str] = []
    client: Any = SimpleNamespace(transport=client_t, close_for=closed.append)
    topology: Any = SimpleNamespace(
        ready=True,
        commands=commands or {},
        slot_map=SlotMap([0] * 16384, ("/node.sock",)),
        refresh_soon=lambda: None,
    )
    router = Router(client, topology, {}, None, budget)
    link = NodeLink(router.table, "/node.sock")
    link.transport = node_t  # type: ignore[assignment]
    router.start(link, b"")
    return router, client_t, node_t, closed


def router_on_nodes(
    monkeypatch: Any, slot_map: SlotMap, commands: CommandTable | None = None
) -> tuple[Router, FakeTransport, dict[str, list[FakeTransport]], list[str]]:
    """A router whose node connections come up at once on recording transports (each node socket's,
    in the order they were opened), without sockets."""
    client_t = FakeTransport()
    closed: list[str] = []
    client: Any = SimpleNamespace(transport=client_t, close_for=closed.append)
    topology: Any = SimpleNamespace(
        ready=True,
        commands=commands or {},
        slot_map=slot_map,
        refresh_soon=lambda: None,
        socket_for_port=lambda port: None,
    )
    nodes: dict[str, list[FakeTransport]] = {}

    def connect(table: LinkTable, link: NodeLink) -> None:
        t = FakeTransport()
        nodes.setdefault(link.socket, []).append(t)
        link.connection_made(t)  # type: ignore[arg-type]

    monkeypatch.setattr(LinkTable, "connect", connect)
    router = Router(client, topology, {})
    router.start(None, b"")
    return router, client_t, nodes, closed
