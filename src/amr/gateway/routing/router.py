"""EnterpriseCluster routing for one authenticated client connection.

The client's commands are parsed with hiredis; for each, ``amr.logic.dataplane.route_decision.choose_route``
decides the route once (its kind, its slot's node, whether it may share a node connection) and the
router runs that decision: one command to one node here, everything else in ``commands``
(split per slot, fanned out, SCAN, AUTH, WATCH, pub/sub), transactions in ``txn``. Replies are put
back in the client's order by its ``ReplyQueue``; node connections, retries and lost connections
are the ``LinkTable``'s.

Node connections: while a client's commands are stateless they go over connections shared with the
listener's other clients of the same identity (``pool``). Its first stateful command (or its not
reading its replies) moves it to connections of its own for good; that command and the ones after
it wait until every earlier reply is in, so that nothing it sent on a shared connection can be
overtaken on its own.

Memory: a command whose incomplete part passes 1 MB is streamed to its node as it arrives when its
head names its keys, else held from the gateway-wide ``RequestBudget`` (``amr.logic.dataplane.request_stream``);
a big bulk reply on the client's own connection passes through as it arrives (``NodeLink``); a
client not reading while 64 MB of its replies wait here is closed (``ReplyQueue.flush``).
"""

from __future__ import annotations

import hiredis

from amr.gateway.router_budget import RequestBudget
from amr.gateway.router_topology import NOT_READY_REPLY, ClusterTopology
from amr.gateway.routing.big_commands import BigCommands
from amr.gateway.routing.commands import run_special
from amr.gateway.routing.items import Pending
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.node_link import NodeLink
from amr.gateway.routing.pool import LinkPool
from amr.gateway.routing.replies import MAX_PENDING, ReplyQueue
from amr.gateway.routing.session import ClientConnection
from amr.gateway.routing.txn import Transaction
from amr.logic.dataplane.command_routing import CROSSSLOT_REPLY, KEYED, MULTI, QUIT
from amr.logic.dataplane.request_reading import measure_command, parse_inline_commands
from amr.logic.dataplane.request_stream import MAX_HELD_COMMAND, STREAM_AT
from amr.logic.dataplane.route_decision import choose_route
from amr.logic.resp.frames import render_command
from amr.logic.resp.requests import RequestParser, RespProtocolError

# What the auth phase held may not hold a bigger incomplete command than a held one may.
MAX_REQUEST_BYTES = MAX_HELD_COMMAND
OK = b"+OK\r\n"
NOT_BULK_STRINGS = b"-ERR Protocol error: expected an array of bulk strings\r\n"


class Router:
    """Routes one client's commands across the database's shards and answers it in order."""

    __slots__ = (
        "client", "topology", "replies", "table", "big", "reader", "waiting", "txn", "closing", "closed",
        "inline", "carry", "draining", "tail", "last_command",
    )  # fmt: skip

    def __init__(
        self,
        client: ClientConnection,
        topology: ClusterTopology,
        replay: dict[bytes, tuple[bytes, ...]],
        pool: LinkPool | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self.client = client
        self.topology = topology
        self.closed = False
        self.replies = ReplyQueue(client, self)
        self.table = LinkTable(self, self.replies, topology, replay, pool)
        self.reader = hiredis.Reader()
        self.waiting: list[tuple[list[bytes], bytes]] | None = None
        self.txn: Transaction | None = None
        self.closing = False
        self.last_command = (b"", b"")  # name, first argument if short: CLIENT LIST's cmd
        self.carry = 0
        self.inline = b""  # an incomplete inline command (``PING\r\n`` typed into nc)
        # Leaving the shared connections: ``waiting`` holds the commands until every reply is in.
        self.draining = False
        # Big commands (``big``). ``tail``: the incomplete command's bytes while it may still be streamed.
        budget = budget if budget is not None else RequestBudget()
        self.big = BigCommands(self, self.replies, self.table, budget)
        self.tail: list[bytes] = []

    @property
    def bytes_out(self) -> int:
        """Bytes the client's node connections sent it (for the disconnect audit event)."""
        return self.replies.bytes_out

    # -- setup ----------------------------------------------------------------------------------

    def start(self, first_link: NodeLink | None, held: bytes) -> None:
        """Begin routing: ``first_link`` is the authenticated connection of the auth phase (kept as
        the link to its node), ``held`` the client's bytes that followed its AUTH."""
        if first_link is not None:
            self.table.links[first_link.socket] = first_link
        if not self.topology.ready:
            self.waiting = []
            self.topology.when_ready(self._ready)
        if held:
            # What arrived with the AUTH may mix inline and RESP commands (a hand-typed session):
            # split it with the gateway's own parser, and leave only an incomplete tail to hiredis.
            parser = RequestParser(MAX_REQUEST_BYTES)
            try:
                commands = parser.feed(held)
            except RespProtocolError as e:
                self.replies.refuse(e.reply, "protocol_error")
                return
            for cmd in commands:
                if not self._take(list(cmd.args), cmd.raw):
                    break
            self.replies.flush()
            if self.closed or self.closing:
                return
            rest = parser.take_rest()
            if rest:
                self.feed(rest)

    def _ready(self, ok: bool) -> None:
        waiting, self.waiting = self.waiting or [], None
        if self.closed:
            return
        if not ok:
            for _ in waiting:
                self.replies.fifo.append(Pending(reply=NOT_READY_REPLY))
            self.replies.flush()
            self.fail("cluster_unavailable")
            return
        for args, raw in waiting:
            self.dispatch(args, raw)
            if self.closed or self.closing:
                break
        self.replies.flush()

    # -- client input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Client bytes: parse the commands they complete and route each."""
        if self.closed or self.closing:
            return
        big = self.big
        if big.stream is not None:
            data = big.stream_data(data)
            if not data or self.closed:
                return
        if big.head is not None:
            try:
                big.head.extend(data)
            except RespProtocolError as e:
                self.replies.refuse(e.reply, "protocol_error")
            return
        reader = self.reader
        # ``carry``: bytes received that are not part of a command yet. hiredis cannot say where a
        # command ended (its buffer may end exactly between two arguments of one), so the router
        # counts: a client's RESP is canonical, each command's size follows from its arguments.
        carry = self.carry
        fresh = carry == 0
        if self.inline or (fresh and data[:1] != b"*"):
            data = self._feed_inline(data)
            if not data or self.closed:
                return
        reader.feed(data)
        carry += len(data)
        self.table.batching = True
        completed = False
        try:
            args = reader.gets()
            while args is not False:
                completed = True
                try:
                    if type(args) is not list or not args:
                        raise TypeError("not an array")
                    size = measure_command(args)
                except TypeError:  # not an array of bulk strings (an integer, a nested array)
                    self.replies.refuse(NOT_BULK_STRINGS, "protocol_error")
                    return
                carry -= size
                # One whole command in this chunk: forward the bytes as they came.
                raw = data if fresh and size == len(data) else render_command(args)
                fresh = False
                if self.waiting is not None:
                    self.waiting.append((args, raw))
                else:
                    self.dispatch(args, raw)
                if self.closed or self.closing:  # QUIT: what follows it is not run
                    break
                args = reader.gets()
            if self.closed or self.closing:
                if not self.closed:  # QUIT: what is complete is written; ``replies_written`` closes
                    self.replies.flush()
                return
            self.carry = carry = max(carry, 0)
            if completed:
                big.holding = False
            if carry:
                if big.holding:
                    pass
                elif carry <= len(data):
                    self.tail = [data[len(data) - carry :]]
                else:
                    self.tail.append(data)
                if carry > STREAM_AT and not big.holding:
                    self._big_command()
            elif self.tail:
                self.tail = []
            if big.holding or big.held:
                big.hold(self.carry)
        except hiredis.ProtocolError:
            self.replies.refuse(b"-ERR Protocol error: invalid request\r\n", "protocol_error")
            return
        finally:
            self.table.write_batch()
        if self.replies.fifo:
            self.replies.flush()
            if len(self.replies.fifo) > MAX_PENDING:
                self.replies.update_client_reading()
        if self.draining and len(self.waiting or ()) > MAX_PENDING:
            self.replies.update_client_reading()

    # -- big commands (amr.gateway.routing.big_commands) --------------------------------------------

    def _big_command(self) -> None:
        """The incomplete command passed ``STREAM_AT``: stream it if its head says where it goes and
        nothing routed before it is in flight elsewhere; else hold it whole, from the budget."""
        head = b"".join(self.tail)
        self.tail = []
        may_stream = self.waiting is None and self.txn is None and self.table.pubsub is None
        if not self.big.begin(head, may_stream):
            return
        # hiredis keeps a copy of what it was fed: a new reader drops it.
        self.reader = hiredis.Reader()
        self.carry = 0
        if self.replies.fifo:
            # Earlier commands may be on shared connections: the big one goes on the client's own
            # once their replies are in (``replies_written``), so it cannot overtake them. Until
            # then the client is not read.
            self.replies.update_client_reading()
            return
        self._start_stream()

    def _start_stream(self) -> None:
        # The node connection carries this command for as long as its client takes to send it: not
        # one shared with other clients.
        self.leave_shared_links()
        rest = self.big.start()
        if rest:
            self.feed(rest)

    def _feed_inline(self, data: bytes) -> bytes:
        """Inline commands (space-separated words on a line), as the engine accepts them; return
        the bytes from the first RESP array on, for the RESP parser."""
        read = parse_inline_commands(self.inline + data)
        self.inline = b""
        for args in read.commands:
            if not self._take(args, render_command(args)):
                if not self.closed:  # an inline QUIT: answered, and nothing after it runs
                    self.replies.flush()
                return b""
        if read.too_big:
            self.replies.refuse(b"-ERR Protocol error: too big inline request\r\n", "protocol_error")
            return b""
        self.inline = read.partial
        if self.replies.fifo and not read.partial:
            self.replies.flush()
        return read.rest

    def _take(self, args: list[bytes], raw: bytes) -> bool:
        """Run one command (or keep it until the cluster is ready); False once the input has ended."""
        if self.waiting is not None:
            self.waiting.append((args, raw))
        else:
            self.dispatch(args, raw)
        return not (self.closed or self.closing)

    def dispatch(self, args: list[bytes], raw: bytes) -> None:
        """Route one command: decide its route (``choose_route``), then run that decision."""
        self.last_command = (args[0], args[1] if len(args) > 1 and len(args[1]) <= 32 else b"")
        if self.draining:
            assert self.waiting is not None
            self.waiting.append((args, raw))
            return
        pubsub = self.table.pubsub
        if pubsub is not None:
            pubsub.command(args, raw)
            return
        table = self.table
        topology = self.topology
        sharing = table.pool is not None
        route = choose_route(args[0].lower(), args, topology.commands, topology.slot_map, sharing)
        kind, slot, socket, shared = route
        if self.txn is not None and kind != QUIT:  # QUIT is never queued, as in the engine
            if self.txn.command(kind, slot, socket, raw):
                self.txn = None
            return
        if sharing and not shared:
            self.leave_shared_links()
            if self.draining:
                assert self.waiting is not None
                self.waiting.append((args, raw))
                return
        fifo = self.replies.fifo
        if kind == KEYED:
            if slot == -2:
                fifo.append(Pending(reply=CROSSSLOT_REPLY))
                return
            p = Pending(raw, slot)
            fifo.append(p)
            table.to(socket).send(raw, p)
        elif kind == QUIT:
            fifo.append(Pending(reply=OK))
            self.closing = True
        elif kind == MULTI:
            self.txn = Transaction(table, self.replies, raw)
        else:
            run_special(table, self.replies, route, args, raw)

    def leave_shared_links(self) -> None:
        """The client is stateful from now on: its own connections only. Until the replies of what
        it sent over shared ones are in, its commands wait (``draining``)."""
        if self.table.leave_shared() and self.replies.fifo and self.waiting is None:
            self.draining = True
            self.waiting = []

    def _drained(self) -> None:
        """Every reply owed over shared connections is written: run the commands that waited."""
        self.draining = False
        waiting, self.waiting = self.waiting or [], None
        if self.closed:
            return
        self.table.batching = True
        try:
            for args, raw in waiting:
                self.dispatch(args, raw)
                if self.closed or self.closing:
                    break
        finally:
            self.table.write_batch()
        self.replies.update_client_reading()
        self.replies.flush()

    # -- what the parts ask of the router (amr.gateway.routing.session.Session) ---------------------

    def replies_written(self) -> None:
        """Every reply owed is written: start the big command that waited for it, run the commands
        that waited for the shared connections' replies, or pass on pub/sub bytes; close after QUIT."""
        if self.big.head is not None:
            self._start_stream()
            return
        if self.draining:
            self._drained()
            return
        if self.replies.backlog:
            self.replies.write_backlog()
        if self.closing and self.waiting is None:
            self.client.close_for("client_quit")

    def holds_client(self) -> bool:
        """Whether the client must not be read for the router's own reasons: too many commands
        waiting (for a node, or a barrier), a big command held or about to stream, or its node
        connection not up yet."""
        waiting, big, pubsub = self.waiting, self.big, self.table.pubsub
        stream = big.stream
        return (
            (waiting is not None and len(waiting) > MAX_PENDING)
            or (pubsub is not None and pubsub.holds_client())
            or big.paused
            or big.head is not None
            or (stream is not None and stream[1].transport is None)
        )

    def link_up(self) -> None:
        """A node connection is up: the command streaming to it may take the client's bytes again."""
        if self.big.stream is not None:
            self.replies.update_client_reading()

    def pause_links(self, paused: bool) -> None:
        """The client is not reading its replies: stop (or resume) reading every node connection. A
        shared one is never paused for one client: the client leaves them (its replies still owed
        there are buffered for it here) and the engine holds what it will be owed on its own."""
        if paused:
            self.leave_shared_links()
        self.table.pause_links(paused)

    # -- closing --------------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """Close the client (after what is already written)."""
        self.client.close_for(reason)

    def client_eof(self) -> None:
        """A plain client half-closed: answer what it sent, then close."""
        self.closing = True
        self.replies.flush()

    def close(self) -> None:
        """The client is gone: close every node connection."""
        self.closed = True
        self.big.close()
        self.table.close()
