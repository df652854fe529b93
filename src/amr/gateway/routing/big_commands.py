"""One client's big commands (``amr.logic.dataplane.request_stream``): a command whose incomplete part passes
``STREAM_AT`` is streamed to its node as it arrives when its head names its keys, else held whole,
each byte past ``STREAM_AT`` reserved from the gateway-wide ``RequestBudget``.

A command to stream waits (``head``) until every earlier reply is in, since earlier commands may be on
shared connections it must not overtake; it then streams (``stream``) over a connection of the
client's own. A client that does not fit in the budget is paused, not failed, until others give
bytes back.
"""

from __future__ import annotations

from amr.gateway.router_budget import RequestBudget
from amr.gateway.routing.items import Streamed
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.replies import ReplyQueue
from amr.gateway.routing.session import Session
from amr.logic.dataplane.request_stream import CommandScanner, choose_stream_slot, plan_request_hold
from amr.logic.resp.requests import RespProtocolError

TOO_LARGE_REPLY = b"-ERR Protocol error: request too large\r\n"


class StreamHead:
    """A big command to stream once the client's earlier replies are in: its bytes so far (the
    client is paused meanwhile, so little more comes), and any bytes after it."""

    __slots__ = ("scanner", "parts", "slot", "rest")

    def __init__(self, scanner: CommandScanner, head: bytes, slot: int) -> None:
        self.scanner = scanner
        self.parts = [head]
        self.slot = slot
        self.rest: list[bytes] = []

    def extend(self, data: bytes) -> None:
        """Bytes that arrived before the pause took effect."""
        if self.scanner.done:
            self.rest.append(data)
            return
        n = self.scanner.feed(data)
        self.parts.append(data[:n])
        if n < len(data):
            self.rest.append(data[n:])

    def take(self) -> tuple[CommandScanner, bytes, int, bytes]:
        return self.scanner, b"".join(self.parts), self.slot, b"".join(self.rest)


class BigCommands:
    """The client's command waiting to stream (``head``), the one streaming (``stream``), and the one
    held whole (``holding``, ``held`` bytes of it reserved from ``budget``; ``paused``: waiting for room)."""

    __slots__ = (
        "session",
        "replies",
        "table",
        "budget",
        "head",
        "stream",
        "holding",
        "held",
        "paused",
        "carry",
    )

    def __init__(
        self, session: Session, replies: ReplyQueue, table: LinkTable, budget: RequestBudget
    ) -> None:
        self.session = session
        self.replies = replies
        self.table = table
        self.budget = budget
        self.head: StreamHead | None = None
        self.stream: tuple[CommandScanner, NodeLink] | None = None
        self.holding = False
        self.held = 0
        self.paused = False
        self.carry = 0  # the held command's bytes so far, as last planned

    def begin(self, head: bytes, may_stream: bool) -> bool:
        """The incomplete command passed ``STREAM_AT`` (``head``: its bytes so far): True if it is to
        stream (its head says where it goes, and ``may_stream``: nothing routed before it is in
        flight elsewhere); else it is held whole, or refused."""
        scanner = CommandScanner()
        try:
            scanner.feed(head)
        except RespProtocolError as e:
            self.replies.refuse(e.reply, "protocol_error")
            return False
        slot = None
        if may_stream and not scanner.done:
            slot = choose_stream_slot(scanner, self.table.topology.commands)
        if slot is None:
            self.holding = True
            return False
        self.head = StreamHead(scanner, head, slot)
        return True

    def start(self) -> bytes:
        """Send the waiting command's head over the client's own connection to its node, and stream
        the rest as it comes; return the bytes that followed it."""
        assert self.head is not None
        scanner, head, slot, rest = self.head.take()
        self.head = None
        table = self.table
        link = table.slot_link(slot) if slot >= 0 else table.any_link()
        assert isinstance(link, NodeLink)
        p = Streamed(slot)
        self.replies.fifo.append(p)
        link.send(head, p)
        if not scanner.done:
            self.stream = (scanner, link)
        self.replies.update_client_reading()
        return rest

    def stream_data(self, data: bytes) -> bytes:
        """Client bytes while a command streams: its bytes to its node now; return what follows it."""
        assert self.stream is not None
        scanner, link = self.stream
        try:
            n = scanner.feed(data)
        except RespProtocolError as e:
            self.replies.refuse(e.reply, "protocol_error")
            return b""
        part = data if n == len(data) else data[:n]
        t = link.transport
        if link.closed:
            return b""  # link_lost closes the client
        if t is None:
            link.early.append(part)  # connecting: the client is not read meanwhile
        else:
            t.write(part)
        if not scanner.done:
            self.replies.update_client_reading()
            return b""
        self.stream = None
        self.replies.update_client_reading()
        return data[n:]

    def hold(self, carry: int) -> None:
        """Reserve (or give back) budget for the incomplete command held whole (``carry`` bytes so far)."""
        self.carry = carry
        decision = plan_request_hold(carry if self.holding else 0, self.held, self.budget.total)
        if decision.action == "pause":
            if not self.paused:
                self.paused = True
                self.budget.wait(self._budget_freed)
                self.replies.update_client_reading()
            return
        if decision.reserve:
            self.held += decision.reserve
            self.budget.take(decision.reserve)
        if self.paused:
            self.paused = False
            self.budget.stop_waiting(self._budget_freed)
            self.replies.update_client_reading()
        if decision.action == "refuse":
            self.replies.refuse(TOO_LARGE_REPLY, "request_too_large")

    def _budget_freed(self) -> None:
        if not self.session.closed:
            self.hold(self.carry)

    def close(self) -> None:
        """The client is gone: give its bytes back to the budget."""
        if self.held:
            self.budget.take(-self.held)
            self.held = 0
        self.budget.stop_waiting(self._budget_freed)
