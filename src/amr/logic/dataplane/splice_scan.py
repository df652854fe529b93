"""Which commands of a spliced (NoCluster, OSSCluster) client the gateway takes over after
authentication, found without slowing the splice down.

The gateway answers ``CLIENT LIST``, ``CLIENT INFO`` and ``CLIENT KILL`` itself (the engine only sees
the gateway's unix socket, never the client's address, and must not show or close amr's own
connections), and refuses ``AUTH``/``HELLO AUTH`` naming an internal user, as the authentication phase
does. Everything else passes byte for byte.

``SpliceScanner.feed`` frames the client's stream with hiredis (a C parser: about 0.2 µs a command)
and returns None when a chunk holds none of those commands, which the caller then forwards as it
is. Only then does it work out where each command lies (from their sizes: the engine refuses RESP
that is not canonical, so what it accepts is exactly as long as ``measure_command`` says) and split
the chunk. Inline commands (``CLIENT LIST`` typed into nc) are read with the engine's own inline
rules. An incomplete command that may be one of those is held back until it is complete (it is
small), so one is never half forwarded. The scanner also follows MULTI and ``CLIENT REPLY``, to know
whether the client expects a reply to a command it takes over.

Input the engine would not read as this scanner does (a non-canonical header, an argument that is
not a bulk string, an unreadable inline line) raises RespProtocolError: the connection is refused,
as in the authentication phase, so no command can slip past unread.
"""

from __future__ import annotations

from dataclasses import dataclass

import hiredis

from amr.logic.dataplane.auth import REFUSED_AUTH, classify_command
from amr.logic.dataplane.request_reading import INLINE_MAX, measure_command
from amr.logic.resp.frames import render_command
from amr.logic.resp.requests import RespProtocolError, split_inline_args

# CLIENT subcommands the gateway answers (lower case).
TAKEN_OVER = frozenset({b"list", b"info", b"kill"})
# Names the scanner looks at (lower case): the ones it takes over, and the state it follows.
_NAMES = frozenset({b"client", b"auth", b"hello", b"multi", b"exec", b"discard", b"reset"})
# An incomplete command that may be one the gateway takes over is held back up to this size; a
# bigger one would not be: RespProtocolError (no real CLIENT, AUTH or HELLO command is this big).
HOLD_LIMIT = 64 << 10
# What replaces a command the gateway answers while the client's replies are off or skipped: a
# command with no effect, so CLIENT REPLY SKIP still skips exactly one reply.
SILENT_PING = render_command((b"PING",))

_INVALID = "Protocol error: invalid request"


@dataclass(frozen=True, slots=True)
class TakenOver:
    """A command the gateway answers instead of the engine: its arguments (the name first), whether
    the client expects a reply to it (not under CLIENT REPLY OFF or SKIP) and whether it came inside
    MULTI (its reply is then an element of EXEC's)."""

    args: tuple[bytes, ...]
    reply: bool
    in_multi: bool


@dataclass(frozen=True, slots=True)
class InternalAuth:
    """An AUTH or HELLO AUTH naming an internal user: ``REFUSED_AUTH`` goes to the engine instead."""

    raw: bytes = REFUSED_AUTH


Piece = bytes | TakenOver | InternalAuth


def _lower_name(args: list[bytes] | tuple[bytes, ...]) -> bytes:
    name = args[0]
    return name.lower() if 3 < len(name) < 8 else b""


def may_be_taken_over(head: bytes) -> bool:
    """Whether an incomplete RESP command starting with ``head`` may turn out to be one the scanner
    acts on (CLIENT LIST/INFO/KILL, AUTH, HELLO): False once its name (or CLIENT's subcommand) rules
    it out."""
    parts: list[bytes] = []
    pos = head.find(b"\r\n") + 2
    if pos < 2:
        return True
    while len(parts) < 2:
        if pos >= len(head):
            return True
        end = head.find(b"\r\n", pos)
        if end < 0:
            return True
        try:
            size = int(head[pos + 1 : end])
        except ValueError:
            return False
        if size > 7:
            return False
        start = end + 2
        if len(head) < start + size:
            return True
        parts.append(head[start : start + size].lower())
        if parts[0] not in (b"client", b"auth", b"hello"):
            return False
        if parts[0] != b"client":
            return True
        pos = start + size + 2
    return parts[1] in TAKEN_OVER


class SpliceScanner:
    """Reads a spliced client's commands after authentication (see the module docstring).

    ``feed`` returns None (forward the bytes as they are) or the pieces to send instead, in order:
    bytes, ``TakenOver`` commands and ``InternalAuth`` refusals. ``held`` bytes (an incomplete command
    that may be taken over) are neither forwarded nor returned until it completes; ``take_held``
    gives them back (the client half-closed)."""

    __slots__ = ("reader", "carry", "held", "in_multi", "replies_off", "skip_next")

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.carry = 0  # bytes of the incomplete command already forwarded (0: at a command boundary)
        self.held = b""  # an incomplete command not forwarded (from its first byte)
        self.in_multi = False
        self.replies_off = False
        self.skip_next = False

    def take_held(self) -> bytes:
        held, self.held = self.held, b""
        self.reader = hiredis.Reader()
        return held

    def feed(self, data: bytes) -> list[Piece] | None:
        """Take client bytes; None when they hold nothing the scanner acts on and no incomplete
        command is held (forward ``data`` as it is), else the pieces to forward. Raise
        RespProtocolError for input the engine would not read the same way."""
        if self.held or (self.carry == 0 and data[:1] != b"*"):
            return self._from_boundary(self.take_held() + data)
        reader = self.reader
        reader.feed(data)
        commands: list[list[bytes]] = []
        notable = False
        gets = reader.gets
        try:
            args = gets()
            while args is not False:
                commands.append(args)
                # Anything but an array whose first element is a bulk string fails here (None,
                # [], an integer, a map...): it is read again below, with the engine's rules.
                name = args[0]
                if 3 < len(name) < 8 and name.lower() in _NAMES:
                    notable = True
                args = gets()
        except (hiredis.ProtocolError, TypeError, IndexError, KeyError, AttributeError):
            if self.carry:
                raise RespProtocolError(_INVALID) from None
            self.reader = hiredis.Reader()
            return self._from_boundary(data)
        if not notable and not reader.has_data():
            self.carry = 0
            if commands:
                self.skip_next = False  # CLIENT REPLY SKIP skipped the first of them
            return None
        return self._place(commands, data)

    # -- where commands lie -------------------------------------------------------------------------

    def _place(self, commands: list[list[bytes]], data: bytes) -> list[Piece] | None:
        """Pieces for ``data``, whose complete commands hiredis returned (the first began
        ``self.carry`` bytes before ``data``)."""
        spans: list[tuple[list[bytes], int, int]] = []
        pos = -self.carry
        for args in commands:
            try:
                size = measure_command(args)
            except TypeError:
                raise RespProtocolError(_INVALID) from None
            spans.append((args, pos, pos + size))
            pos += size
        pieces = self._pieces(spans, data)
        if not self.reader.has_data():
            self.carry = 0
            return pieces
        if pos < 0:  # no command completed: the incomplete one goes on
            self.carry = len(data) - pos
            return pieces
        tail = data[pos:]
        if tail[:1] != b"*":
            # An inline command after RESP ones (hiredis waits on it): read it with the inline rules.
            return _cut(pieces, len(tail)) + self._from_boundary(tail)
        if may_be_taken_over(tail):
            # Not forwarded: held until complete, then read again from its start.
            self._hold(tail)
            return _cut(pieces, len(tail))
        self.carry = len(tail)
        return pieces

    def _from_boundary(self, buf: bytes) -> list[Piece]:
        """Pieces for ``buf``, which starts at a command boundary and may hold inline commands."""
        spans: list[tuple[list[bytes], int, int]] = []
        pos = 0
        n = len(buf)
        reader: hiredis.Reader | None = None
        while pos < n:
            if buf[pos] != 0x2A:  # "*": otherwise an inline command
                end = buf.find(b"\n", pos)
                if end < 0:
                    if n - pos > INLINE_MAX:
                        raise RespProtocolError("Protocol error: too big inline request")
                    self._hold(buf[pos:])
                    return self._pieces(spans, buf[:pos])
                line = buf[pos:end]
                if b"\0" in line or b"\xff" in line:
                    raise RespProtocolError("Protocol error: NUL or 0xFF byte in inline request")
                args = split_inline_args(line[:-1] if line.endswith(b"\r") else line)
                if args:
                    spans.append((args, pos, end + 1))
                pos = end + 1
                continue
            reader = hiredis.Reader()
            reader.feed(buf[pos:] if pos else buf)
            try:
                while pos < n and buf[pos] == 0x2A:
                    args = reader.gets()
                    if args is False:
                        break
                    if args is None or args == []:
                        # *-1 and *0: nothing for the engine, which skips them
                        end = buf.find(b"\n", pos)
                        pos = end + 1
                        continue
                    if type(args) is not list or type(args[0]) is not bytes:
                        raise RespProtocolError(_INVALID)
                    size = measure_command(args)
                    spans.append((args, pos, pos + size))
                    pos += size
            except (hiredis.ProtocolError, TypeError):
                raise RespProtocolError(_INVALID) from None
            if pos < n and buf[pos] == 0x2A:
                break  # an incomplete RESP command from ``pos``
        pieces = self._pieces(spans, buf[:pos])
        if pos >= n:
            self.carry = 0
            self.reader = hiredis.Reader()
            return pieces
        if may_be_taken_over(buf[pos:]):
            self._hold(buf[pos:])
        else:
            assert reader is not None
            self.reader = reader
            self.carry = n - pos
            pieces.append(buf[pos:])
        return pieces

    def _hold(self, tail: bytes) -> None:
        if len(tail) > HOLD_LIMIT:
            raise RespProtocolError("Protocol error: command too large for the gateway to read")
        self.held = tail
        self.carry = 0
        self.reader = hiredis.Reader()

    # -- what to send ---------------------------------------------------------------------------------

    def _pieces(self, spans: list[tuple[list[bytes], int, int]], buf: bytes) -> list[Piece]:
        """Follow each command's effect on the connection's state, and cut ``buf`` around the
        commands the gateway acts on (a span starting before ``buf`` was already forwarded)."""
        out: list[Piece] = []
        last = 0
        for args, start, end in spans:
            skipped = self.skip_next
            self.skip_next = False
            name = _lower_name(args)
            if not name or name not in _NAMES:
                continue
            action = self._follow(name, args, skipped)
            if action is None or start < 0:
                continue
            if start > last:
                out.append(buf[last:start])
            out.append(action)
            last = end
        if last < len(buf):
            out.append(buf[last:])
        return out

    def _follow(self, name: bytes, args: list[bytes], skipped: bool) -> Piece | None:
        """Update the state one command changes; the piece that replaces it, or None."""
        if name == b"multi":
            self.in_multi = True
        elif name in (b"exec", b"discard"):
            self.in_multi = False
        elif name == b"reset":
            self.in_multi = self.replies_off = self.skip_next = False
        elif name in (b"auth", b"hello"):
            if classify_command(tuple(args)) == "internal":
                return InternalAuth()
        elif len(args) > 1:
            sub = args[1].lower()
            if sub == b"reply" and len(args) == 3 and not self.in_multi:
                mode = args[2].lower()
                if mode == b"on":
                    self.replies_off = False
                elif mode == b"off":
                    self.replies_off = True
                elif mode == b"skip" and not self.replies_off:
                    self.skip_next = True
            elif sub in TAKEN_OVER and _well_formed(sub, len(args)):
                return TakenOver(tuple(args), not (self.replies_off or skipped), self.in_multi)
        return None


def _well_formed(sub: bytes, argc: int) -> bool:
    """Arity as the engine checks it before anything else (a malformed one goes to the engine,
    which answers the arity error)."""
    if sub == b"info":
        return argc == 2
    if sub == b"kill":
        return argc >= 3
    return argc >= 2


def _cut(pieces: list[Piece], size: int) -> list[Piece]:
    """``pieces`` without their last ``size`` bytes (held back: they are all in the last piece)."""
    if size <= 0:
        return pieces
    last = pieces[-1]
    assert isinstance(last, bytes) and len(last) >= size
    if len(last) == size:
        return pieces[:-1]
    return [*pieces[:-1], last[:-size]]
