"""The commands of a spliced (NoCluster, OSSCluster) connection the gateway answers itself, once
it has authenticated: CLIENT LIST, CLIENT INFO and CLIENT KILL (and AUTH naming an internal user,
refused as in the authentication phase).

Client to node: ``SpliceScanner`` returns None for a chunk holding none of them, which goes to the
node as it is, so the splice stays a write per chunk. A taken-over command is replaced by a barrier
(``UNSUBSCRIBE <token>``). Node to client: bytes go straight to the client, except while the connection's
CLIENT ID answer or a barrier's answer is awaited; ``BarrierWatch`` then finds it, the node is not
read while the gateway works out the answer (``amr.gateway.client_ops``), and the answer takes the
barrier's place. The connection's engine id (from CLIENT ID, sent as it authenticated) and its
addresses are in the process's ``ClientDirectory`` for as long as it is open.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from amr.gateway.client_directory import ClientDirectory, Spliced
from amr.gateway.client_ops import FAILED, Answer, ConnectionView, answer_spliced, peer_addresses
from amr.gateway.upstream import UpstreamSide
from amr.logic.dataplane.barrier import CLIENT_ID_COMMAND, PREFIX_LEN, BarrierWatch, Found, parse_id_reply
from amr.logic.dataplane.client_admin import parse_client_request, render_context_refusal
from amr.logic.dataplane.splice_commands import InternalAuth, TakenOver
from amr.logic.dataplane.splice_scan import SpliceScanner
from amr.logic.resp.requests import RespProtocolError

log = logging.getLogger(__name__)


class InterceptedClient(ConnectionView, Protocol):
    """The client connection as the interceptor sees it (``amr.gateway.splice.ClientSide``)."""

    def refuse(self, reply: bytes, event: str | None, reason: str) -> None:
        """Answer with a RESP error and close."""

    def audit(self, event: str, reason: str | None = None) -> None: ...


class SpliceInterceptor:
    """One spliced connection's scanner, barriers and taken-over commands (module docstring)."""

    __slots__ = (
        "client", "up", "directory", "socket", "addr", "laddr", "scanner", "watch", "node_id",
        "awaiting_id", "ops", "buffer", "busy", "closed", "tasks", "_feed", "_to_node", "_to_client",
    )  # fmt: skip

    def __init__(
        self,
        client: InterceptedClient,
        up: UpstreamSide,
        directory: ClientDirectory,
        socket: str,
    ) -> None:
        self.client = client
        self.up = up
        self.directory = directory
        self.socket = socket
        self.addr, self.laddr = peer_addresses(client)
        self.scanner = SpliceScanner()
        self.watch = BarrierWatch(secrets.token_hex(PREFIX_LEN // 2).encode())
        self.node_id: int | None = None
        self.awaiting_id = True
        self.ops: dict[int, TakenOver] = {}
        self.buffer = b""  # node bytes not examined yet (an id reply in pieces, or held during an answer)
        self.busy = False
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        self._feed = self.scanner.feed
        assert up.transport is not None and client.transport is not None
        self._to_node: Callable[[bytes], object] = up.transport.write
        self._to_client: Callable[[bytes], object] = client.transport.write

    def start(self, rest: bytes) -> None:
        """Ask the node for the connection's id (nothing else is in flight on it), then pass on what
        the client sent after authenticating."""
        self._to_node(CLIENT_ID_COMMAND)
        self.up._splice = self.node_data
        if rest:
            self.client_data(rest)

    def take_held(self) -> bytes:
        """An incomplete command held back (the client half-closed: the node gets it as it is)."""
        return self.scanner.take_held()

    # -- client to node -----------------------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        try:
            pieces = self._feed(data)
        except RespProtocolError as e:
            self.client.refuse(e.reply, "protocol_error", e.detail)
            return
        if pieces is None:
            self._to_node(data)
            return
        out: list[bytes] = []
        for piece in pieces:
            if type(piece) is bytes:
                out.append(piece)
            elif isinstance(piece, InternalAuth):
                self.client.audit("auth_failure", "internal_user")
                out.append(piece.raw)
            elif isinstance(piece, TakenOver):
                out.append(self._take_over(piece))
        if out:
            self._to_node(b"".join(out))

    def _take_over(self, command: TakenOver) -> bytes:
        """What the node gets in the command's place: a barrier, answered in the command's turn."""
        serial, barrier = self.watch.add()
        self.ops[serial] = command
        self.up._splice = self.node_data
        return barrier

    # -- node to client -----------------------------------------------------------------------------

    def node_data(self, data: bytes) -> None:
        if self.busy or self.closed:
            self.buffer += data
            return
        if self.buffer:
            data, self.buffer = self.buffer + data, b""
        if self.awaiting_id:
            parsed = parse_id_reply(data)
            if parsed is None:
                self.buffer = data
                return
            self.node_id, used = parsed
            self.awaiting_id = False
            data = data[used:]
            if self.node_id is not None:
                self.directory.add_spliced(
                    self.socket, self.node_id, Spliced(self.addr, self.laddr, self.client)
                )
        self._replies(data)

    def _replies(self, data: bytes) -> None:
        write = self._to_client
        while data and self.watch.pending:
            pieces, data = self.watch.feed(data)
            for piece in pieces:
                if type(piece) is bytes:
                    write(piece)
                elif isinstance(piece, Found):
                    if self._found(piece, data):
                        return
        if data:
            write(data)
        if not self.watch.pending and not self.watch.tail:
            # Nothing awaited any more: node bytes go straight to the client again.
            self.up._splice = write

    def _found(self, found: Found, after: bytes) -> bool:
        """A barrier's confirmation; True if the rest (``after``) waits for the answer."""
        for serial in [s for s in self.ops if s < found.serial]:
            del self.ops[serial]  # the engine never ran those (a DISCARDed MULTI): nothing to say
        command = self.ops.pop(found.serial, None)
        if command is None:
            return False
        request = parse_client_request(command.args)
        if request is not None and found.subscriptions and not found.resp3:
            # RESP2 pub/sub mode: the engine would have refused it.
            if command.reply:
                self._to_client(render_context_refusal(request.action))
            return False
        self.busy = True
        self.buffer = after
        if self.up.transport is not None:
            self.up.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._answer(command, found.resp3))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _answer(self, command: TakenOver, resp3: bool) -> None:
        try:
            answer = await answer_spliced(self.directory, self.socket, self.node_id, command.args, resp3)
        except Exception:  # noqa: BLE001 - an answer that failed must not stall the connection
            log.exception("CLIENT command failed")
            answer = Answer(FAILED)
        if self.closed:
            return
        if command.reply:  # not under CLIENT REPLY OFF or SKIP
            self._to_client(answer.reply)
        if answer.close_caller:
            self.client.close_for("client_killed")
            return
        self.busy = False
        if self.up.transport is not None and not self.up.transport.is_closing():
            self.up.transport.resume_reading()
        data, self.buffer = self.buffer, b""
        self._replies(data)

    # -- closing ------------------------------------------------------------------------------------

    def forget(self) -> None:
        """The connection closed: forget it, stop what is in progress."""
        self.closed = True
        if self.node_id is not None:
            self.directory.remove_spliced(self.socket, self.node_id)
        for task in self.tasks:
            task.cancel()
