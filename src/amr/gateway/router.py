"""EnterpriseCluster routing for one authenticated client connection.

The client's commands are parsed with hiredis; each goes to the node serving its hash slot, is split
per slot (DEL/UNLINK/EXISTS/TOUCH/MGET/MSET), fanned out to every shard (DBSIZE, FLUSHALL, KEYS,
INFO, SCRIPT LOAD...), walked shard by shard (SCAN), or answered here (CROSSSLOT, CLUSTER blocked).
Replies are raw frames (``amr.gateway.router_links``) put back in the client's order by one FIFO:
the head is written as soon as it is complete, so a pipeline across shards is answered in order.

MOVED/ASK/TRYAGAIN/CLUSTERDOWN never reach the client: the command is sent again where the reply
says (``retry``), the slot map updated and re-read. Everything but one command to one node is in
``router_commands``; transactions run on the node of their first keyed command (``router_txn``); a
subscribing client gets a dedicated node connection spliced byte for byte. Pure decisions live in
``amr.logic`` (command_routing, link_sharing, reply_merge, cluster_slots, resp_frames).

Node connections: while a client's commands are stateless (``amr.logic.link_sharing``) they go over
connections shared with the listener's other clients of the same identity (``router_pool``). Its
first stateful command (or its not reading its replies) moves it to connections of its own for good;
that command and the ones after it wait until every earlier reply is in, so that nothing it sent on a
shared connection can be overtaken on its own.

Memory: a command whose incomplete part passes 1 MB is streamed to its node as it arrives when its
head names its keys, else held from the gateway-wide ``RequestBudget`` (``amr.logic.request_stream``);
a big bulk reply on the client's own connection passes through as it arrives (``NodeLink``); a
client not reading while 64 MB of its replies wait here is closed (``flush``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import TYPE_CHECKING

import hiredis

from amr.gateway.router_budget import RequestBudget
from amr.gateway.router_commands import route_special
from amr.gateway.router_links import Item, Link, NodeLink, Pending, Streamed, Swallow
from amr.gateway.router_topology import NOT_READY_REPLY, ClusterTopology
from amr.logic.cluster_slots import parse_redirect
from amr.logic.command_routing import (
    CROSSSLOT_REPLY,
    KEYED,
    choose_keys,
    choose_kind,
    choose_slot,
)
from amr.logic.gateway_resp import RequestParser, RespProtocolError
from amr.logic.link_sharing import choose_shared
from amr.logic.request_stream import (
    MAX_HELD_COMMAND,
    STREAM_AT,
    CommandScanner,
    choose_stream_slot,
    plan_request_hold,
)
from amr.logic.resp_frames import render_command

if TYPE_CHECKING:
    from amr.gateway.router_pool import Lane, LinkPool
    from amr.gateway.router_txn import Transaction
    from amr.gateway.splice import ClientSide

log = logging.getLogger(__name__)

# A command may be redirected or retried this many times before its error goes to the client.
MAX_TRIES = 20
RETRY_DELAY = 0.02
# Commands answered out of order wait in the FIFO; past this many the client is not read.
MAX_PENDING = 10_000
# What the auth phase held may not hold a bigger incomplete command than a held one may.
MAX_REQUEST_BYTES = MAX_HELD_COMMAND
# A client that is not reading while this much of its replies waits in the gateway is closed.
MAX_REPLY_BUFFER = 64 << 20
INLINE_MAX = 64 << 10
ASKING = b"*1\r\n$6\r\nASKING\r\n"


def _encoded_size(args: list[bytes]) -> int:
    """How many bytes a command takes as a RESP array of bulk strings (TypeError for an argument
    that is not a bulk string)."""
    size = 3 + len(b"%d" % len(args))
    for arg in args:
        if type(arg) is not bytes:
            raise TypeError("not a bulk string")
        n = len(arg)
        size += n + 5 + (1 if n < 10 else 2 if n < 100 else len(b"%d" % n))
    return size


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


class Router:
    """Routes one client's commands across the database's shards and answers it in order."""

    __slots__ = (
        "client", "transport", "topology", "replay", "reader", "fifo", "links", "links_paused",
        "_client_paused", "_full_links", "bytes_out", "waiting", "txn", "watch_link", "watch_slot",
        "pubsub", "backlog", "closing", "closed", "rng", "_tasks", "batching", "dirty", "inline", "carry", "_flush_soon",
        "pool", "lanes", "replayed", "draining", "budget", "tail", "holding", "held", "budget_paused",
        "stream_head", "stream",
    )  # fmt: skip

    def __init__(
        self,
        client: ClientSide,
        topology: ClusterTopology,
        replay: dict[bytes, tuple[bytes, ...]],
        pool: LinkPool | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self.client = client
        assert client.transport is not None
        self.transport = client.transport
        self.topology = topology
        self.replay = replay
        self.reader = hiredis.Reader()
        self.fifo: deque[Pending] = deque()
        self.links: dict[str, NodeLink] = {}
        self.links_paused = False
        self._client_paused = False
        self._full_links = 0
        self.bytes_out = 0
        self.waiting: list[tuple[list[bytes], bytes]] | None = None
        self.txn: Transaction | None = None
        self.watch_link: Link | None = None
        self.watch_slot = -1
        self.pubsub: NodeLink | None = None
        self.backlog: list[bytes] = []
        self.closing = False
        self.closed = False
        self.rng = random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self.batching = False  # while routing one client chunk: node writes wait in ``dirty``
        self.dirty: list[NodeLink] = []
        self.carry = 0
        self._flush_soon = False
        self.inline = b""  # an incomplete inline command (``PING\r\n`` typed into nc)
        # Shared node connections while the client is stateless (None: its own connections only).
        self.pool = pool
        self.lanes: dict[str, Lane] = {}
        self.replayed = tuple(render_command(args) for args in replay.values())
        # Leaving the shared connections: ``waiting`` holds the commands until every reply is in.
        self.draining = False
        # Big commands (amr.logic.request_stream). ``tail``: the incomplete command's bytes while
        # they may still be streamed; ``holding``: it cannot be, and is held whole, ``held`` bytes
        # of it reserved from the gateway's ``budget`` (``budget_paused``: waiting for room).
        self.budget = budget if budget is not None else RequestBudget()
        self.tail: list[bytes] = []
        self.holding = False
        self.held = 0
        self.budget_paused = False
        # A command to stream once every earlier reply is in (its head, read so far, and slot),
        # then the one streaming: what follows it goes to ``link`` as it arrives.
        self.stream_head: StreamHead | None = None
        self.stream: tuple[CommandScanner, NodeLink] | None = None

    # -- setup ----------------------------------------------------------------------------------

    def start(self, first_link: NodeLink | None, held: bytes) -> None:
        """Begin routing: ``first_link`` is the authenticated connection of the auth phase (kept as
        the link to its node), ``held`` the client's bytes that followed its AUTH."""
        if first_link is not None:
            self.links[first_link.socket] = first_link
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
                self._refuse(e.reply, "protocol_error")
                return
            for cmd in commands:
                args = list(cmd.args)
                if self.waiting is not None:
                    self.waiting.append((args, cmd.raw))
                else:
                    self.dispatch(args, cmd.raw)
                if self.closed or self.closing:
                    break
            self.flush()
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
                self.fifo.append(Pending(reply=NOT_READY_REPLY))
            self.flush()
            self.fail("cluster_unavailable")
            return
        for args, raw in waiting:
            self.dispatch(args, raw)
            if self.closed or self.closing:
                break
        self.flush()

    # -- client input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Client bytes: parse the commands they complete and route each."""
        if self.closed or self.closing:
            return
        if self.stream is not None:
            data = self._stream_data(data)
            if not data or self.closed:
                return
        if self.stream_head is not None:
            try:
                self.stream_head.extend(data)
            except RespProtocolError as e:
                self._refuse(e.reply, "protocol_error")
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
        self.batching = True
        completed = False
        try:
            args = reader.gets()
            while args is not False:
                completed = True
                if type(args) is not list or not args:
                    self._refuse(
                        b"-ERR Protocol error: expected an array of bulk strings\r\n", "protocol_error"
                    )
                    return
                size = _encoded_size(args)
                carry -= size
                # One whole command in this chunk: forward the bytes as they came.
                raw = data if fresh and size == len(data) else render_command(args)
                fresh = False
                if self.waiting is not None:
                    self.waiting.append((args, raw))
                else:
                    self.dispatch(args, raw)
                if self.closed or self.closing:  # QUIT: what follows it is not run
                    return
                args = reader.gets()
            self.carry = carry = max(carry, 0)
            if completed:
                self.holding = False
            if carry:
                if self.holding:
                    pass
                elif carry <= len(data):
                    self.tail = [data[len(data) - carry :]]
                else:
                    self.tail.append(data)
                if carry > STREAM_AT and not self.holding:
                    self._big_command()
            elif self.tail:
                self.tail = []
            if self.holding or self.held:
                self._hold()
        except hiredis.ProtocolError:
            self._refuse(b"-ERR Protocol error: invalid request\r\n", "protocol_error")
            return
        except (
            TypeError,
            AttributeError,
        ):  # an argument that is not a bulk string (an integer, a nested array)
            self._refuse(b"-ERR Protocol error: expected an array of bulk strings\r\n", "protocol_error")
            return
        finally:
            self._write_batch()
        if self.fifo:
            self.flush()
            if len(self.fifo) > MAX_PENDING:
                self._update_client_reading()
        if self.draining and len(self.waiting or ()) > MAX_PENDING:
            self._update_client_reading()

    # -- big commands (amr.logic.request_stream) ------------------------------------------------

    def _big_command(self) -> None:
        """The incomplete command passed ``STREAM_AT``: stream it if its head says where it goes and
        nothing routed before it is in flight elsewhere; else hold it whole, from the budget."""
        head = b"".join(self.tail)
        self.tail = []
        scanner = CommandScanner()
        try:
            scanner.feed(head)
        except RespProtocolError as e:
            self._refuse(e.reply, "protocol_error")
            return
        slot = None
        if self.waiting is None and self.txn is None and self.pubsub is None and not scanner.done:
            slot = choose_stream_slot(scanner, self.topology.commands)
        if slot is None:
            self.holding = True
            return
        # hiredis keeps a copy of what it was fed: a new reader drops it.
        self.reader = hiredis.Reader()
        self.carry = 0
        self.stream_head = StreamHead(scanner, head, slot)
        if self.fifo:
            # Earlier commands may be on shared connections: the big one goes on the client's own
            # once their replies are in (``flush``), so it cannot overtake them. Until then the
            # client is not read.
            self._update_client_reading()
            return
        self._start_stream()

    def _start_stream(self) -> None:
        assert self.stream_head is not None
        scanner, head, slot, rest = self.stream_head.take()
        self.stream_head = None
        # The node connection carries this command for as long as its client takes to send it: not
        # one shared with other clients.
        self.leave_shared_links()
        link = self.slot_link(slot) if slot >= 0 else self.any_link()
        assert isinstance(link, NodeLink)
        p = Streamed(slot)
        self.fifo.append(p)
        link.send(head, p)
        if not scanner.done:
            self.stream = (scanner, link)
        self._update_client_reading()
        if rest:
            self.feed(rest)

    def _stream_data(self, data: bytes) -> bytes:
        """Client bytes while a command streams: its bytes to its node now; return what follows it."""
        assert self.stream is not None
        scanner, link = self.stream
        try:
            n = scanner.feed(data)
        except RespProtocolError as e:
            self._refuse(e.reply, "protocol_error")
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
            self._update_client_reading()
            return b""
        self.stream = None
        self._update_client_reading()
        return data[n:]

    def _hold(self) -> None:
        """Reserve (or give back) budget for the incomplete command held whole."""
        decision = plan_request_hold(self.carry if self.holding else 0, self.held, self.budget.total)
        if decision.action == "pause":
            if not self.budget_paused:
                self.budget_paused = True
                self.budget.wait(self._budget_freed)
                self._update_client_reading()
            return
        if decision.reserve:
            self.held += decision.reserve
            self.budget.take(decision.reserve)
        if self.budget_paused:
            self.budget_paused = False
            self.budget.stop_waiting(self._budget_freed)
            self._update_client_reading()
        if decision.action == "refuse":
            self._refuse(b"-ERR Protocol error: request too large\r\n", "request_too_large")

    def _budget_freed(self) -> None:
        if not self.closed:
            self._hold()

    def _feed_inline(self, data: bytes) -> bytes:
        """Inline commands (space-separated words on a line), as the engine accepts them; return
        the bytes from the first RESP array on, for the RESP parser."""
        buf = self.inline + data
        self.inline = b""
        while buf and buf[:1] != b"*":
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > INLINE_MAX:
                    self._refuse(b"-ERR Protocol error: too big inline request\r\n", "protocol_error")
                    return b""
                self.inline = buf
                return b""
            args = buf[:end].split()
            buf = buf[end + 1 :]
            if args:
                if self.waiting is not None:
                    self.waiting.append((args, render_command(args)))
                else:
                    self.dispatch(args, render_command(args))
                if self.closed:
                    return b""
        if self.fifo:
            self.flush()
        return buf

    def dispatch(self, args: list[bytes], raw: bytes) -> None:
        """Route one command."""
        if self.draining:
            assert self.waiting is not None
            self.waiting.append((args, raw))
            return
        pubsub = self.pubsub
        if pubsub is not None:
            if pubsub.transport is not None:
                pubsub.transport.write(raw)
            else:
                pubsub.early.append(raw)
            return
        name = args[0].lower()
        if self.txn is not None:
            self.txn.command(name, args, raw)
            return
        kind = choose_kind(name, args)
        if self.pool is not None and not choose_shared(kind, name, args, self.topology.commands):
            self.leave_shared_links()
            if self.draining:
                assert self.waiting is not None
                self.waiting.append((args, raw))
                return
        if kind == KEYED:
            keys = choose_keys(name, args, self.topology.commands)
            slot = choose_slot(keys) if keys else -1
            if slot == -2:
                self.fifo.append(Pending(reply=CROSSSLOT_REPLY))
                return
            p = Pending(raw, slot)
            self.fifo.append(p)
            (self.slot_link(slot) if slot >= 0 else self.any_link()).send(raw, p)
            return
        route_special(self, kind, name, args, raw)

    # -- node links -----------------------------------------------------------------------------

    def link(self, socket: str) -> Link:
        """The connection to ``socket``, opened (and authenticated as the client) on first use: a
        lane on a shared connection while the client shares them."""
        if self.pool is not None:
            lane = self.lanes.get(socket)
            if lane is None or lane.closed:
                lane = self.lanes[socket] = self.pool.lane(self, socket, self.replayed)
            return lane
        return self.own_link(socket)

    def own_link(self, socket: str) -> NodeLink:
        """The client's own connection to ``socket``, opened (and authenticated as the client) on first use."""
        link = self.links.get(socket)
        if link is not None and not link.closed:
            return link
        link = NodeLink(self, socket)
        self.links[socket] = link
        for replayed in self.replay.values():
            link.send(render_command(replayed), Swallow(self.replay_refused))
        self.connect(link)
        return link

    def connect(self, link: NodeLink) -> None:
        task = asyncio.get_running_loop().create_task(link.connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def slot_link(self, slot: int) -> Link:
        slot_map = self.topology.slot_map
        index = slot_map.owner[slot]
        primaries = slot_map.primaries
        socket = primaries[index] if index >= 0 else primaries[0]
        link: Link | None = (self.lanes if self.pool is not None else self.links).get(socket)
        if link is not None and not link.closed:
            return link
        return self.link(socket)

    def any_link(self) -> Link:
        """A node for a keyless command: an open connection if there is one."""
        for link in (self.lanes if self.pool is not None else self.links).values():
            if not link.closed:
                return link
        return self.link(self.topology.slot_map.primaries[0])

    def leave_shared_links(self) -> None:
        """The client is stateful from now on: its own connections only. Until the replies of what
        it sent over shared ones are in, its commands wait (``draining``)."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        for lane in self.lanes.values():
            lane.shared.leave(self)
        self.lanes.clear()
        if self.fifo and self.waiting is None:
            self.draining = True
            self.waiting = []

    def _drained(self) -> None:
        """Every reply owed over shared connections is written: run the commands that waited."""
        self.draining = False
        waiting, self.waiting = self.waiting or [], None
        if self.closed:
            return
        self.batching = True
        try:
            for args, raw in waiting:
                self.dispatch(args, raw)
                if self.closed or self.closing:
                    break
        finally:
            self._write_batch()
        self._update_client_reading()
        self.flush()

    def _write_batch(self) -> None:
        """The end of a batch of commands: one write per node connection for all of them."""
        self.batching = False
        dirty = self.dirty
        if dirty:
            for link in dirty:
                link.write_out()
            dirty.clear()

    def shared_link_lost(self, reason: str) -> None:
        """A shared connection this client was waiting on closed: as for its own (``link_lost``)."""
        if not self.closed:
            self.topology.refresh_soon()
            self.fail(reason)

    def replay_refused(self, frame: bytes) -> None:
        # The client's credentials no longer work on a node (a key was regenerated).
        self.fail("auth_replay_refused")

    def retry(self, item: Item, frame: bytes, from_socket: str) -> bool:
        """The node at ``from_socket`` answered ``item`` with an error: send it again where MOVED/ASK
        say, or after a short delay for TRYAGAIN/CLUSTERDOWN; False when the error is the client's to see."""
        if item.tries >= MAX_TRIES or isinstance(item, Swallow):
            return False
        redirect = parse_redirect(frame)
        if redirect is not None:
            kind, slot, port = redirect
            socket = self.topology.socket_for_port(port)
            if socket is None:
                self.topology.refresh_soon()
                return False
            item.tries += 1
            target = self.link(socket)
            if kind == b"MOVED":
                self.topology.slot_map.moved(slot, socket)
                self.topology.refresh_soon()
            else:
                # ASKING and the command are queued back to back on the same connection: they leave
                # in one write, with no other client's command between them on a shared one.
                target.send(ASKING, Swallow())
            target.send(item.raw, item)
            return True
        if frame.startswith(b"-TRYAGAIN") or frame.startswith(b"-CLUSTERDOWN"):
            item.tries += 1
            if frame.startswith(b"-CLUSTERDOWN"):
                self.topology.refresh_soon()
            delay = RETRY_DELAY * item.tries
            asyncio.get_running_loop().call_later(delay, self._resend, item, from_socket)
            return True
        return False

    def _resend(self, item: Item, socket: str) -> None:
        if self.closed:
            return
        if item.slot >= 0:
            target = self.slot_link(item.slot)
        else:
            target = self.link(socket)
        target.send(item.raw, item)

    def link_failed(self, link: NodeLink, reason: str) -> None:
        """A node connection could not be opened."""
        link.closed = True
        self.link_lost(link, reason)

    def link_lost(self, link: NodeLink, reason: str = "node_closed") -> None:
        """A node connection closed: forgotten if it owed nothing; the client is closed otherwise
        (what happened to the commands it was running is unknown)."""
        if self.links.get(link.socket) is link:
            del self.links[link.socket]
        if self.closed:
            return
        self.topology.refresh_soon()
        if link is self.pubsub or link is self.watch_link:
            self.fail(reason)
            return
        if any(not isinstance(item, Swallow) for item in link.owed):
            self.fail(reason)

    # -- client output --------------------------------------------------------------------------

    def node_replied(self) -> None:
        """A node's replies were matched: write what is complete, at once for a lone command, else
        once the loop has read every node that answered in this turn (one TLS record for a
        pipeline's replies from several shards, rather than one per shard)."""
        fifo = self.fifo
        if not fifo or fifo[0].reply is None:
            return
        if len(fifo) == 1:
            self.flush()
        elif not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_soon = False
        if not self.closed:
            self.flush()

    def flush(self) -> None:
        """Write every complete reply at the head of the client's queue."""
        fifo = self.fifo
        if fifo and fifo[0].reply is not None:
            t = self.transport
            if self.links_paused and t.get_write_buffer_size() > MAX_REPLY_BUFFER:
                # It is not reading, and what it was sent over shared connections kept coming.
                self.client.abort("output_buffer_limit")
                return
            head = fifo.popleft().reply
            if not fifo or fifo[0].reply is None:
                assert head is not None
                t.write(head)
            else:
                out = [head]
                while fifo and fifo[0].reply is not None:
                    out.append(fifo.popleft().reply)
                t.write(b"".join(out))  # type: ignore[arg-type]
            if self._client_paused and len(fifo) < MAX_PENDING // 2:
                self._update_client_reading()
        if not fifo:
            if self.stream_head is not None:
                self._start_stream()
                return
            if self.draining:
                self._drained()
                return
            if self.backlog:
                backlog, self.backlog = self.backlog, []
                self.transport.write(b"".join(backlog))
            if self.closing and self.waiting is None:
                self.client.close_for("client_quit")

    def push(self, frame: bytes) -> None:
        """An out-of-band push (client tracking): to the client at once, between replies."""
        self.transport.write(frame)

    def pubsub_data(self, data: bytes) -> None:
        """Bytes of the pub/sub connection: to the client once the replies before it are written."""
        if self.fifo:
            self.backlog.append(data)
        else:
            self.transport.write(data)

    def link_up(self) -> None:
        """A node connection is up: the command streaming to it may take the client's bytes again."""
        self._update_client_reading()

    def pause_client(self, full: bool) -> None:
        """A node connection's write buffer filled up (or drained): stop (or resume) reading the client."""
        self._full_links += 1 if full else -1
        self._update_client_reading()

    def _update_client_reading(self) -> None:
        waiting = self.waiting
        stream = self.stream
        want_paused = (
            self._full_links > 0
            or len(self.fifo) > MAX_PENDING
            or (waiting is not None and len(waiting) > MAX_PENDING)
            or self.budget_paused
            or self.stream_head is not None
            or (stream is not None and stream[1].transport is None)
        )
        if want_paused == self._client_paused or self.transport.is_closing():
            return
        self._client_paused = want_paused
        if want_paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def pause_links(self, paused: bool) -> None:
        """The client is not reading its replies: stop (or resume) reading every node connection. A
        shared one is never paused for one client: the client leaves them (its replies still owed
        there are buffered for it here) and the engine holds what it will be owed on its own."""
        if paused:
            self.leave_shared_links()
        self.links_paused = paused
        links = list(self.links.values()) + ([self.pubsub] if self.pubsub is not None else [])
        for link in links:
            t = link.transport
            if t is None or t.is_closing():
                continue
            if paused and not link.paused:
                t.pause_reading()
            elif not paused and link.paused:
                t.resume_reading()
            link.paused = paused

    # -- closing --------------------------------------------------------------------------------

    def _refuse(self, reply: bytes, reason: str) -> None:
        self.fifo.append(Pending(reply=reply))
        self.flush()
        self.fail(reason)

    def fail(self, reason: str) -> None:
        """Close the client (after what is already written)."""
        self.client.close_for(reason)

    def client_eof(self) -> None:
        """A plain client half-closed: answer what it sent, then close."""
        self.closing = True
        self.flush()

    def close(self) -> None:
        """The client is gone: close every node connection."""
        self.closed = True
        if self.held:
            self.budget.take(-self.held)
            self.held = 0
        self.budget.stop_waiting(self._budget_freed)
        for lane in self.lanes.values():
            lane.shared.leave(self)
        for link in list(self.links.values()):
            link.close()
        if self.pubsub is not None:
            self.pubsub.close()
        for task in self._tasks:
            task.cancel()
