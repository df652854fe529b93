"""Which commands of a spliced (NoCluster, OSSCluster) client the gateway takes over after
authentication, found without slowing the splice down.

The gateway answers ``CLIENT LIST``, ``CLIENT INFO`` and ``CLIENT KILL`` itself (the engine only sees
the gateway's unix socket, never the client's address, and must not show or close amr's own
connections), and refuses ``AUTH``/``HELLO AUTH`` naming an internal user, as the authentication phase
does. Everything else passes byte for byte.

``SpliceScanner.feed`` frames the client's stream with hiredis (a C parser: a fraction of a
microsecond a command) and looks at each command's name; a chunk holding none of those commands, and
ending where a command ends, is forwarded as it is (``feed`` returns None). Only otherwise does it
work out where each command lies, from their sizes: the engine refuses RESP that is not canonical,
so what it accepts is exactly as long as ``measure_command`` says. Where a chunk ends between two
elements of an array, hiredis cannot tell whether a command is incomplete; the next chunk can (an
array goes on with ``$``; anything else starts a command), so the sizes are worked out then, only
when needed. Inline commands (``CLIENT LIST`` typed into nc) are read with the engine's own inline
rules. An incomplete command that may be one of those is held back until it is complete: the engine
could not run it before then either.

The scanner also follows ``CLIENT REPLY`` (and RESET), to know whether the client expects the reply
to a command it takes over. Input the engine would not read as the scanner does (a header it
refuses, an argument that is not a bulk string, an unreadable inline line) raises
RespProtocolError: the connection is refused, as in the authentication phase.

hiredis keeps an incomplete command until its last byte: a tenant's 200 MB SET would make the shared
gateway hold 200 MB. So once an incomplete command passes ``SKIP_AT`` bytes (it cannot be one the
scanner acts on: those are held, and may not pass ``HOLD_LIMIT``), the scanner follows it with a
``CommandScanner`` that only counts its bytes, forwards them as they come, and goes back to hiredis
where it ends.
"""

from __future__ import annotations

import hiredis

from amr.logic.dataplane.auth import classify_command
from amr.logic.dataplane.request_reading import INLINE_MAX, measure_command
from amr.logic.dataplane.request_stream import CommandScanner
from amr.logic.dataplane.splice_commands import (
    SCANNED_NAMES,
    TAKEN_OVER,
    InternalAuth,
    Piece,
    TakenOver,
    may_be_taken_over,
    well_formed,
)
from amr.logic.resp.requests import RespProtocolError, split_inline_args

# An incomplete command that may be one the gateway takes over is held back up to this size; a
# bigger one would not be: RespProtocolError (no real CLIENT, AUTH or HELLO command is this big).
HOLD_LIMIT = 64 << 10
# A chunk up to this size that may end inside an array is kept until the next chunk says (a bigger
# one's commands are placed at once).
LAZY_KEEP = 8192
# An incomplete command past this size is followed by counting its bytes, not by hiredis.
SKIP_AT = 256 << 10

_INVALID = "Protocol error: invalid request"


_Span = tuple[list[bytes], int, int]  # a command's arguments, and where its bytes start and end


class SpliceScanner:
    """Reads a spliced client's commands after authentication (see the module docstring).

    ``feed`` returns None (forward the bytes as they are) or the pieces to send instead, in order:
    bytes, ``TakenOver`` commands and ``InternalAuth`` refusals. ``held`` bytes (an incomplete command
    that may be taken over) are neither forwarded nor returned until it completes; ``take_held``
    gives them back (the client half-closed)."""

    __slots__ = (
        "reader", "carry", "lazy", "held", "held_inline", "replies_off", "skip_next", "careful", "tail",
        "big", "skip_at",
    )  # fmt: skip

    def __init__(self, skip_at: int = SKIP_AT) -> None:
        self.skip_at = skip_at
        self.reader = hiredis.Reader()
        # Bytes of the incomplete RESP command the reader holds (0: at a command boundary).
        self.carry = 0
        # The previous chunk, if it may have ended between two elements of an array (it started a
        # command): read again to work ``carry`` out if the next bytes go on with that array.
        self.lazy: bytes | None = None
        self.held = b""  # the start of an incomplete command, not forwarded (fed to the reader
        self.held_inline = False  # unless it is an inline line)
        self.replies_off = False
        self.skip_next = False
        # Whether the next chunk needs more than the fast path (something held, an incomplete
        # command, a reply to skip).
        self.careful = False
        # Chunks ending with the ``carry`` bytes of the incomplete command (or with the ``lazy``
        # chunk): its head, should it pass ``SKIP_AT``.
        self.tail: list[bytes] = []
        # The command past ``skip_at`` whose end is counted (``tail``, ``carry`` and the reader empty).
        self.big: CommandScanner | None = None

    def take_held(self) -> bytes:
        held, self.held = self.held, b""
        if held:
            self.reader = hiredis.Reader()
            self.carry = 0
            self.held_inline = False
            self._settle()
        return held

    def feed(self, data: bytes) -> list[Piece] | None:
        """Take client bytes; None when they hold nothing the scanner acts on (forward ``data`` as
        it is), else the pieces to forward. Raise RespProtocolError for input the engine would not
        read the same way."""
        if self.big is not None:
            return self._feed_big(data)
        if self.careful or data[0] != 0x2A:  # "*": a command starts here, in RESP
            pieces = self._feed_carefully(data)
        else:
            # The fast path: frame and look at the names only; most chunks hold whole commands.
            reader = self.reader
            reader.feed(data)
            gets = reader.gets
            last = None
            try:
                args = gets()
                while args is not False:
                    # Anything but an array whose first element is a bulk string raises here.
                    name = args[0]
                    if 3 < len(name) < 7 and name.lower() in SCANNED_NAMES:
                        break
                    last = args
                    args = gets()
                else:
                    if (
                        last is not None
                        and len(data) <= LAZY_KEEP
                        and not reader.has_data()
                        # It may end where its last command ends (if only by chance, the next
                        # chunk says so).
                        and data.endswith(last[-1] + b"\r\n")
                    ):
                        self.lazy = data
                        self.tail = [data]
                        return None
            except (hiredis.ProtocolError, TypeError, IndexError, KeyError, AttributeError):
                pass
            # Read again, placing each command (the chunk starts a command: a new reader will do).
            self.lazy = None
            self.reader = hiredis.Reader()
            pieces = self._feed_carefully(data)
        self._settle()
        carry = self.carry
        if carry:
            if carry <= len(data):
                self.tail = [data[-carry:]]
            else:
                self.tail.append(data)
            if carry > self.skip_at and not self.held:
                self._begin_big()
        elif self.tail:
            self.tail = []
        return pieces

    def _settle(self) -> None:
        self.careful = bool(self.held) or self.carry != 0 or self.skip_next

    # -- a big command, counted ----------------------------------------------------------------------

    def _begin_big(self) -> None:
        """The incomplete command passed ``skip_at``: count the rest of it (its bytes so far are
        already forwarded) and let hiredis drop its copy."""
        scanner = CommandScanner(keep_args=False)
        scanner.feed(b"".join(self.tail)[-self.carry :])
        self.big = scanner
        self.tail = []
        self.reader = hiredis.Reader()
        self.carry = 0

    def _feed_big(self, data: bytes) -> list[Piece] | None:
        big = self.big
        assert big is not None
        n = big.feed(data)
        if not big.done:
            return None
        self.big = None
        self.skip_next = False  # the big command was the one CLIENT REPLY SKIP skipped
        self._settle()
        if n == len(data):
            return None
        rest = self.feed(data[n:])
        return None if rest is None else [data[:n], *rest]

    def _feed_carefully(self, data: bytes) -> list[Piece]:
        """``feed`` placing every command: the chunk may continue one, hold an inline one or one
        the scanner acts on, or follow something held or a reply to skip."""
        first = data[0]
        carry = self.carry
        lazy, self.lazy = self.lazy, None
        if lazy is not None and first == 0x24:  # "$": the array goes on, it was incomplete
            carry = _incomplete(lazy)
        if (carry == 0 and first != 0x2A) or self.held_inline:  # an inline command
            return self._from_boundary(self._release() + data)
        reader = self.reader
        reader.feed(data)
        commands: list[list[bytes]] = []
        try:
            args = reader.gets()
            while args is not False:
                if type(args) is not list:
                    raise _Unusual()
                commands.append(args)
                args = reader.gets()
        except (hiredis.ProtocolError, _Unusual):
            return self._recover(commands, data, carry)
        return self._place(commands, data, carry)

    # -- where commands lie -------------------------------------------------------------------------

    def _release(self) -> bytes:
        held, self.held = self.held, b""
        self.held_inline = False
        return held

    def _spans(self, commands: list[list[bytes]], start: int) -> tuple[list[_Span], int]:
        spans: list[_Span] = []
        pos = start
        for args in commands:
            try:
                size = measure_command(args)
            except TypeError:
                raise RespProtocolError(_INVALID) from None
            spans.append((args, pos, pos + size))
            pos += size
        return spans, pos

    def _place(self, commands: list[list[bytes]], data: bytes, carry: int) -> list[Piece]:
        """Pieces for ``data``, whose complete commands hiredis returned (the first began ``carry``
        bytes before ``data``, the held ones included)."""
        held = self._release()
        buf = held + data if held else data
        spans, pos = self._spans(commands, len(held) - carry)
        pieces = self._pieces(spans, buf)
        if pos < 0:  # nothing completed: the incomplete command goes on
            self.carry = carry + len(data)
            return pieces
        self.carry = len(buf) - pos
        if pos < len(buf) and may_be_taken_over(buf[pos:]):
            self._hold(buf[pos:])
            pieces = _cut(pieces, len(buf) - pos)
        return pieces

    def _recover(self, commands: list[list[bytes]], data: bytes, carry: int) -> list[Piece]:
        """hiredis could not read what follows ``commands``: an inline command after RESP ones (the
        engine reads it), or input the engine refuses too."""
        held = self._release()
        buf = held + data if held else data
        self.reader = hiredis.Reader()
        self.carry = 0
        spans, pos = self._spans(commands, len(held) - carry)
        if pos < 0 or (pos == 0 and carry > len(held)):
            raise RespProtocolError(_INVALID)
        return _cut(self._pieces(spans, buf), len(buf) - pos) + self._from_boundary(buf[pos:])

    def _from_boundary(self, buf: bytes) -> list[Piece]:
        """Pieces for ``buf``, which starts at a command boundary and may hold inline commands."""
        spans: list[_Span] = []
        pos = 0
        n = len(buf)
        self.reader = reader = hiredis.Reader()
        self.carry = 0
        while pos < n:
            if buf[pos] != 0x2A:  # "*": otherwise an inline command
                end = buf.find(b"\n", pos)
                if end < 0:
                    if n - pos > INLINE_MAX:
                        raise RespProtocolError("Protocol error: too big inline request")
                    self._hold(buf[pos:], inline=True)
                    return self._pieces(spans, buf[:pos])
                line = buf[pos:end]
                if b"\0" in line or b"\xff" in line:
                    raise RespProtocolError("Protocol error: NUL or 0xFF byte in inline request")
                args = split_inline_args(line[:-1] if line.endswith(b"\r") else line)
                if args:
                    spans.append((args, pos, end + 1))
                pos = end + 1
                continue
            self.reader = reader = hiredis.Reader()
            reader.feed(buf[pos:] if pos else buf)
            try:
                while pos < n and buf[pos] == 0x2A:
                    args = reader.gets()
                    if args is False:
                        break
                    if type(args) is not list or (args and type(args[0]) is not bytes):
                        raise RespProtocolError(_INVALID)
                    size = measure_command(args)
                    if args:  # *0: nothing for the engine, which skips it
                        spans.append((args, pos, pos + size))
                    pos += size
            except (hiredis.ProtocolError, TypeError):
                raise RespProtocolError(_INVALID) from None
            if pos < n and buf[pos] == 0x2A:
                break  # an incomplete RESP command from ``pos``
        pieces = self._pieces(spans, buf[:pos])
        if pos >= n:
            self.reader = hiredis.Reader()
            return pieces
        self.carry = n - pos
        if may_be_taken_over(buf[pos:]):
            self._hold(buf[pos:])
        else:
            pieces.append(buf[pos:])
        return pieces

    def _hold(self, tail: bytes, inline: bool = False) -> None:
        if len(tail) > HOLD_LIMIT:
            raise RespProtocolError("Protocol error: command too large for the gateway to read")
        self.held = tail
        self.held_inline = inline
        if inline:
            self.reader = hiredis.Reader()
            self.carry = 0

    # -- what to send ---------------------------------------------------------------------------------

    def _pieces(self, spans: list[_Span], buf: bytes) -> list[Piece]:
        """Follow each command's effect on the connection's state, and cut ``buf`` around the
        commands the gateway acts on (a span starting before ``buf`` was already forwarded)."""
        out: list[Piece] = []
        last = 0
        for args, start, end in spans:
            skipped = self.skip_next
            self.skip_next = False
            if not args:
                continue
            name = args[0].lower() if 3 < len(args[0]) < 7 else b""
            if name not in SCANNED_NAMES:
                continue
            action = self._follow(name, args, skipped)
            if action is None or start < 0:
                continue
            if start > last:
                out.append(buf[last:start])
            out.append(action)
            last = end
        if last < len(buf):
            out.append(buf[last:] if last else buf)
        return out

    def _follow(self, name: bytes, args: list[bytes], skipped: bool) -> Piece | None:
        """Update the state one command changes; the piece that replaces it, or None."""
        if name == b"reset":
            self.replies_off = self.skip_next = False
        elif name in (b"auth", b"hello"):
            if classify_command(tuple(args)) == "internal":
                return InternalAuth()
        elif len(args) > 1:
            sub = args[1].lower()
            if sub == b"reply" and len(args) == 3:
                mode = args[2].lower()
                if mode == b"on":
                    self.replies_off = False
                elif mode == b"off":
                    self.replies_off = True
                elif mode == b"skip" and not self.replies_off:
                    self.skip_next = True
            elif sub in TAKEN_OVER and well_formed(sub, len(args)):
                return TakenOver(tuple(args), not (self.replies_off or skipped))
        return None


def _incomplete(chunk: bytes) -> int:
    """The bytes of the incomplete command at the end of ``chunk``, which starts a command."""
    reader = hiredis.Reader()
    reader.feed(chunk)
    done = 0
    args = reader.gets()
    while args is not False:
        done += measure_command(args)
        args = reader.gets()
    return len(chunk) - done


def _cut(pieces: list[Piece], size: int) -> list[Piece]:
    """``pieces`` without their last ``size`` bytes (they are all in the last piece)."""
    if size <= 0:
        return pieces
    last = pieces[-1]
    assert isinstance(last, bytes) and len(last) >= size
    if len(last) == size:
        return pieces[:-1]
    return [*pieces[:-1], last[:-size]]


class _Unusual(Exception):
    """hiredis read something that is not an array (``*-1``, or an inline line it took for RESP)."""
