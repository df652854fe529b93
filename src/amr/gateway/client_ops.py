"""Answering a CLIENT LIST, INFO, KILL (or, on EnterpriseCluster endpoints, ID) the gateway took
over (``amr.logic.dataplane.client_admin`` decides; this module asks the engine and the directory).

Spliced connections: the node's own CLIENT LIST, cut down to the tenant's clients with their real
addresses; kills by engine id as ``amr-gateway``. EnterpriseCluster connections: the gateway's
clients of the database, described by the gateway; kills close those connections. Either way the
filter's syntax is checked by the engine first, so its errors are the engine's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from amr.errors import NodeError
from amr.gateway.client_directory import ClientDirectory, GatewayClient
from amr.logic.dataplane.client_admin import (
    ClientEntry,
    ClientRequest,
    choose_clients,
    choose_known,
    choose_label,
    choose_validation_error,
    choose_victims,
    format_addr,
    parse_client_list,
    parse_client_request,
    render_command_field,
    render_entries,
    render_kill_reply,
    render_name_reply,
    render_text_reply,
)
from amr.logic.resp.engine_codec import is_error_reply

log = logging.getLogger(__name__)

FAILED = b"-ERR the gateway could not answer this command\r\n"
NODE_UNAVAILABLE = b"-ERR the gateway could not ask the database's node about its clients\r\n"
_COMMAND_NAMES = {"list": "client|list", "info": "client|info"}
# Errors about the gateway's connection itself (a node an older amr set up, not converged yet).
_OWN_ERRORS = ("NOPERM", "NOAUTH", "WRONGPASS")
# Closes the clients with these ids; how many it closed.
_Kill = Callable[[list[int]], Awaitable[int]]


class ConnectionView(GatewayClient, Protocol):
    """A client connection's identity (``amr.gateway.splice.ClientSide``)."""

    source: str
    source_port: int
    database_id: str

    @property
    def transport(self) -> asyncio.Transport | None: ...

    @property
    def router(self) -> RoutingView | None: ...


class RoutingView(Protocol):
    """What a routed connection's CLIENT LIST line shows of its router (``amr.gateway.routing``)."""

    last_command: tuple[bytes, bytes]  # its latest command's name, and first argument if short

    @property
    def table(self) -> PubsubView: ...


class PubsubView(Protocol):
    @property
    def pubsub(self) -> object | None:
        """The connection's pub/sub streams, if it is in pub/sub mode."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to write, and whether the asking client closes after it (it killed itself)."""

    reply: bytes
    close_caller: bool = False


def _error_frame(reply: object) -> bytes:
    return b"-" + str(reply).encode("utf-8", "replace").replace(b"\r\n", b" ") + b"\r\n"


async def _validate(directory: ClientDirectory, socket: str, request: ClientRequest) -> bytes | None:
    """The engine's error for the request's filter arguments, if it has one."""
    if request.validation is None:
        return None
    (check,) = await directory.engine(socket, [request.validation])
    if not is_error_reply(check):
        return None
    if str(check).startswith(_OWN_ERRORS):
        return NODE_UNAVAILABLE  # the gateway's own user was refused: not the client's business
    error = choose_validation_error(request, str(check))
    return None if error is None else _error_frame(error)


async def answer_spliced(
    directory: ClientDirectory, socket: str, caller: int | None, args: tuple[bytes, ...], resp3: bool
) -> Answer:
    """A spliced client's CLIENT LIST/INFO/KILL on node ``socket`` (``caller``: its engine id)."""
    request = parse_client_request(args)
    if request is None or request.action == "id":
        return Answer(b"-ERR syntax error\r\n")
    try:
        refused = await _validate(directory, socket, request)
        if refused is not None:
            return Answer(refused)
        known = await directory.known_spliced(socket)
        (text,) = await directory.engine(socket, [(b"CLIENT", b"LIST")])
        if not isinstance(text, bytes):
            return Answer(NODE_UNAVAILABLE)
        entries = choose_known(parse_client_list(text), known)

        async def kill(ids: list[int]) -> int:
            (count,) = await directory.engine(
                socket, [(b"CLIENT", b"KILL", b"ID", *(b"%d" % i for i in ids))]
            )
            return count if isinstance(count, int) else 0

        return await _decide(request, entries, -1 if caller is None else caller, kill, resp3)
    except NodeError:
        return Answer(NODE_UNAVAILABLE)


async def _decide(
    request: ClientRequest, entries: list[ClientEntry], caller: int, kill: _Kill, resp3: bool
) -> Answer:
    """The answer to ``request`` over the tenant's clients ``entries`` (``resp3``: the caller's protocol)."""
    me = next((e for e in entries if e.id == caller), None)
    if me is not None and request.action in _COMMAND_NAMES:
        # Its line shows what it ran, not the gateway's stand-in (a PING, or nothing).
        me = me.with_fields({"cmd": _COMMAND_NAMES[request.action]})
        entries = [me if e.id == caller else e for e in entries]
    if request.action == "info":
        return Answer(render_text_reply(render_entries([me] if me is not None else []), resp3))
    if request.action == "list":
        matched = choose_clients(entries, request.filter, caller, skipme_default=False)
        return Answer(render_text_reply(render_entries(matched), resp3))
    # CLIENT KILL skips its caller unless told not to; the old ip:port form kills whoever it names.
    matched = choose_clients(entries, request.filter, caller, skipme_default=request.action == "kill")
    victims = choose_victims(request, matched)
    others = [v.id for v in victims if v.id != caller]
    itself = len(others) < len(victims)
    killed = await kill(others) if others else 0
    return Answer(render_kill_reply(request.action, killed + itself), close_caller=itself)


class RoutedIdentity:
    """An EnterpriseCluster connection's identity for CLIENT commands: its gateway id, what its
    CLIENT LIST line shows, and its answers (``answer``)."""

    __slots__ = (
        "directory", "database", "id", "client", "addr", "laddr", "fd", "started", "user", "resp", "tasks",
        "labels",
    )  # fmt: skip

    def __init__(
        self, directory: ClientDirectory, client: ConnectionView, replay: dict[bytes, tuple[bytes, ...]]
    ) -> None:
        self.directory = directory
        self.database = client.database_id
        self.id = directory.new_routed_id()
        self.client = client
        self.addr, self.laddr = peer_addresses(client)
        sock = client.transport.get_extra_info("socket") if client.transport is not None else None
        self.fd = sock.fileno() if sock is not None else -1
        self.tasks: set[asyncio.Task[None]] = set()
        # What CLIENT SETNAME and SETINFO set: its line's name, lib-name and lib-ver.
        self.labels = {"name": "", "lib-name": "", "lib-ver": ""}
        self.started = time.monotonic()
        self.user, self.resp = _identity(replay)
        directory.add_routed(self.database, self.id, self)

    def close_for(self, reason: str) -> None:
        self.client.close_for(reason)

    def forget(self) -> None:
        self.directory.remove_routed(self.database, self.id)
        for task in self.tasks:
            task.cancel()

    def answer_later(self, args: tuple[bytes, ...], node: str, done: Callable[[bytes, bool], None]) -> None:
        """Work out ``answer`` in the background; ``done(reply, close_after)`` gets it."""

        async def run() -> None:
            try:
                answer = await self.answer(args, node)
            except Exception:  # noqa: BLE001 - the client must get an answer, whatever went wrong
                log.exception("CLIENT command failed")
                answer = Answer(FAILED)
            done(answer.reply, answer.close_caller)

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def describe(self) -> ClientEntry:
        age = int(time.monotonic() - self.started)
        router = self.client.router
        name, first = router.last_command if router is not None else (b"", b"")
        pubsub = router is not None and router.table.pubsub is not None
        fields = (
            ("id", str(self.id)), ("addr", self.addr), ("laddr", self.laddr), ("fd", str(self.fd)),
            ("name", self.labels["name"]), ("age", str(age)), ("idle", "0"), ("flags", "P" if pubsub else "N"), ("capa", ""), ("db", "0"),
            ("sub", "0"), ("psub", "0"), ("ssub", "0"), ("multi", "-1"), ("watch", "0"), ("qbuf", "0"),
            ("qbuf-free", "0"), ("argv-mem", "0"), ("multi-mem", "0"), ("rbs", "0"), ("rbp", "0"),
            ("obl", "0"), ("oll", "0"), ("omem", "0"), ("tot-mem", "0"), ("events", "r"),
            ("cmd", render_command_field(name, first)),
            ("user", self.user), ("redir", "-1"), ("resp", str(self.resp)),
            ("lib-name", self.labels["lib-name"]), ("lib-ver", self.labels["lib-ver"]),
        )  # fmt: skip
        return ClientEntry(fields)

    async def answer(self, args: tuple[bytes, ...], node: str) -> Answer:
        """CLIENT LIST/INFO/KILL/ID over the database's EnterpriseCluster clients (``node``: where
        the engine checks the filter's syntax)."""
        request = parse_client_request(args)
        if request is None:
            return Answer(b"-ERR syntax error\r\n")
        if request.action == "id":
            return Answer(b":%d\r\n" % self.id)
        if request.action == "getname":
            return Answer(render_name_reply(self.labels["name"], self.resp == 3))
        if request.action in ("setname", "setinfo"):
            label = choose_label(request)
            if isinstance(label, bytes):
                return Answer(label)
            self.labels[label[0]] = label[1]
            return Answer(b"+OK\r\n")
        directory = self.directory
        try:
            refused = await _validate(directory, node, request)
        except NodeError:
            return Answer(NODE_UNAVAILABLE)
        if refused is not None:
            return Answer(refused)
        entries = await directory.routed_entries(self.database)

        async def kill(ids: list[int]) -> int:
            return await directory.close_routed(self.database, ids)

        return await _decide(request, entries, self.id, kill, self.resp == 3)


def _identity(replay: dict[bytes, tuple[bytes, ...]]) -> tuple[str, int]:
    """The user and protocol version a routed connection authenticated with (its replayed AUTH/HELLO)."""
    user, resp = "default", 2
    auth = replay.get(b"AUTH")
    if auth is not None and len(auth) >= 3:
        user = auth[1].decode("utf-8", "replace")
    hello = replay.get(b"HELLO")
    if hello is not None:
        if len(hello) > 1 and hello[1] in (b"2", b"3"):
            resp = int(hello[1])
        for i in range(2, len(hello) - 2):
            if hello[i].upper() == b"AUTH":
                user = hello[i + 1].decode("utf-8", "replace")
    return user, resp


def peer_addresses(client: ConnectionView) -> tuple[str, str]:
    """A client connection's ``addr`` (its TCP peer) and ``laddr`` (the public address it reached)
    as the engine would write them."""
    sockname = client.transport.get_extra_info("sockname") if client.transport is not None else None
    laddr = ""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        laddr = format_addr(str(sockname[0]), int(sockname[1]))
    return format_addr(client.source, client.source_port), laddr
