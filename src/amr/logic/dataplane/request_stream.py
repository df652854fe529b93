"""Big client commands on an EnterpriseCluster endpoint: follow them without holding them.

The router parses each command whole (hiredis) before routing it, so an incomplete command sat in
the gateway until its last byte: up to 64 MB per connection, and one gateway serves every database.
Instead, once an incomplete command holds more than ``STREAM_AT`` bytes, the router reads its head
(``CommandScanner``): if the arguments already in say where it goes (``choose_stream_slot``), the
bytes in hand and every later byte of that command go to the node as they arrive, the client's
reads paused while the node connection's write buffer is full. The command's memory is then the
engine's (a query buffer counted in ``maxmemory-clients`` of the database that asked for it), not
the shared gateway's. Commands whose keys come after the big argument (MSET, EVAL's script ...)
cannot be routed before they are complete: those are held, from a gateway-wide budget
(``plan_request_hold``).
"""

from __future__ import annotations

from dataclasses import dataclass

from amr.logic.dataplane.command_routing import (
    KEYED,
    PUBLISH,
    CommandTable,
    choose_keys,
    choose_kind,
    choose_slot,
)
from amr.logic.dataplane.pubsub import PUBSUB_SLOT
from amr.logic.resp.requests import RespProtocolError

# An incomplete command holding more than this is streamed, or held from the budget.
STREAM_AT = 1 << 20
# A held (not streamable) command may not grow past this; the engine's own bulk limit is 512 MB.
MAX_HELD_COMMAND = 32 << 20
# All connections of one gateway process together hold at most this much of such commands.
HELD_BUDGET = 64 << 20
# Arguments before the big one are kept for routing while they are at most this long.
_KEEP_ARG = 64 << 10
_HEADER_MAX = 24  # "$" + up to 20 digits + CRLF

_ARRAY, _BULK_HEADER, _BULK_BODY, _DONE = 0, 1, 2, 3


class CommandScanner:
    """Follows one RESP command (an array of bulk strings) as its bytes go by, without holding them:
    how many arguments it has (``argc``), the leading arguments while they are short (``args``: the
    command name and usually its keys), and where it ends (``feed`` returns how many of the bytes
    given belong to it; ``done`` once its last byte went by)."""

    __slots__ = ("argc", "args", "done", "_state", "_header", "_left", "_index", "_keeping", "_arg")

    def __init__(self, keep_args: bool = True) -> None:
        self.argc = -1
        self.args: list[bytes] = []
        self.done = False
        self._state = _ARRAY
        self._header = b""
        self._left = 0  # bytes of the current bulk still to come, CRLF included
        self._index = 0  # arguments begun
        self._keeping = keep_args  # False: only where the command ends is followed
        self._arg = bytearray()

    @property
    def arguments_complete(self) -> int:
        """How many arguments have gone by whole."""
        return self._index - (1 if self._state == _BULK_BODY else 0)

    def feed(self, data: bytes) -> int:
        """Consume ``data``; return how many of its bytes belong to the command (the rest is the
        next command). RespProtocolError for a command that is not an array of bulk strings."""
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self._state == _BULK_BODY:
                take = min(self._left, end - pos)
                if self._keeping:
                    self._arg += data[pos : pos + take]
                self._left -= take
                pos += take
                if self._left == 0:
                    self._end_argument()
                continue
            newline = data.find(b"\n", pos, min(end, pos + _HEADER_MAX))
            if newline < 0:
                self._header += data[pos:end]
                if len(self._header) > _HEADER_MAX:
                    raise RespProtocolError("Protocol error: invalid multibulk length")
                return end
            self._header += data[pos : newline + 1]
            pos = newline + 1
            self._end_header()
        return pos

    def _end_header(self) -> None:
        header, self._header = self._header, b""
        marker = b"*" if self._state == _ARRAY else b"$"
        if len(header) > _HEADER_MAX or header[:1] != marker or header[-2:] != b"\r\n":
            raise RespProtocolError("Protocol error: expected an array of bulk strings")
        try:
            n = int(header[1:-2])
        except ValueError:
            raise RespProtocolError("Protocol error: invalid length") from None
        if n < 0 or (self._state == _ARRAY and n == 0):
            raise RespProtocolError("Protocol error: invalid length")
        if self._state == _ARRAY:
            self.argc = n
            self._state = _BULK_HEADER
            return
        self._index += 1
        self._left = n + 2
        self._state = _BULK_BODY
        if n > _KEEP_ARG:
            self._keeping = False

    def _end_argument(self) -> None:
        if self._keeping:
            self.args.append(bytes(self._arg[:-2]))
            self._arg = bytearray()
        if self._index == self.argc:
            self._state = _DONE
            self.done = True
        else:
            self._state = _BULK_HEADER


def choose_stream_slot(scanner: CommandScanner, table: CommandTable) -> int | None:
    """Where a big command can be sent before it is complete: its slot (-1: any node, for a keyless
    command; for PUBLISH the slot whose node is the pub/sub node), or None when its destination cannot be known yet (keys after the big argument, a
    command split across shards or handled by the router, a command the engine does not know)."""
    args = scanner.args
    if not args:
        return None
    name = args[0].lower()
    kind = choose_kind(name, args)
    if kind == PUBLISH:
        return PUBSUB_SLOT  # its node is the pub/sub node
    if kind != KEYED:
        return None
    spec = table.get(name)
    if spec is None or spec.container or spec.movable:
        return None
    if spec.first > 0:
        last = spec.last if spec.last >= 0 else scanner.argc + spec.last
        if last >= len(args) or last >= scanner.arguments_complete:
            return None
    keys = choose_keys(name, args, table)
    slot = choose_slot(keys)
    return None if slot == -2 else slot


@dataclass(frozen=True, slots=True)
class HoldDecision:
    """What to do with a connection's incomplete command: ``hold`` (with ``reserve`` more bytes
    taken from the budget; negative gives some back), ``pause`` reading it until the budget has
    room, or ``refuse`` it as too large."""

    action: str
    reserve: int = 0


def plan_request_hold(carry: int, held: int, total_held: int, budget: int = HELD_BUDGET) -> HoldDecision:
    """Decide for a connection with ``carry`` bytes of an incomplete command that is not streamed,
    ``held`` of them already counted in the gateway's ``total_held``: bytes up to ``STREAM_AT`` are
    the connection's own; beyond, each byte is reserved from ``budget``, a command past
    ``MAX_HELD_COMMAND`` is refused, and one that does not fit while others hold the budget is
    paused (not failed) until they give it back."""
    if carry > MAX_HELD_COMMAND:
        return HoldDecision("refuse", -held)
    want = max(carry - STREAM_AT, 0)
    more = want - held
    if more <= 0 or total_held + more <= budget:
        return HoldDecision("hold", more)
    return HoldDecision("pause")
