"""RESP framing of client commands for the gateway's authentication phase.

The parser is incremental (bytes may arrive split anywhere) and bounded: it never holds more than
its limit, and refuses a declared length that could not fit at once, before the bytes arrive. It is
only used until a connection has authenticated; after that the gateway splices bytes. The node's
replies in that phase are framed by ``amr.logic.resp.reply_scanner``.

The request parser reads commands with the engine's own rules (valkey's ``processInlineBuffer``,
``sdssplitargs``, ``processMultibulkBuffer`` and ``string2ll``), because the authentication phase
decides what a command is from the arguments it parses: if the engine read other arguments from the
same bytes (``"RESET"`` run as RESET while the gateway saw an unknown command), the phase would judge
the wrong command. Where the engine is more lenient than the rules below (a header CR followed by
any byte, a bulk string followed by any two bytes, a NUL in an inline line, which the engine waits on
until its 64 KiB inline limit), the parser refuses the input: what it accepts, the engine reads the
same way.

Where it refuses input the engine refuses too, the error is the engine's own text (valkey's
``networking.c``), so a client or test suite sees the same answer through the gateway as from the
engine: a line with no end in sight, a header no number fits, more arguments or a longer argument
than the engine lets a client send before it has authenticated. The phase's limits are smaller than
the engine's (it answers as soon as the input can only end in that error); input only the phase's
own byte budget refuses gets ``too much data before authentication``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amr.errors import AmrError

# A "*<n>" or "$<n>" header line is at most this long (a 20-digit number and a sign fit).
HEADER_MAX = 32
# The smallest encoding of one argument: "$0\r\n\r\n".
MIN_ARG_BYTES = 6
# The engine's PROTO_INLINE_MAX_SIZE: an inline line longer than this is a protocol error there.
INLINE_MAX = 64 * 1024
# The engine's proto-max-bulk-len (its default; amr does not change it): a longer bulk string is
# refused from anyone.
PROTO_MAX_BULK_LEN = 512 * 1024 * 1024
# What the engine lets a client that has not authenticated declare (networking.c): 10 arguments and
# bulk strings of 16 KiB.
UNAUTHENTICATED_ARGS_MAX = 10
UNAUTHENTICATED_BULK_MAX = 16384
# The engine's protocol errors the phase answers with, in the same situations.
TOO_BIG_INLINE = "Protocol error: too big inline request"
TOO_BIG_MBULK_COUNT = "Protocol error: too big mbulk count string"
TOO_BIG_BULK_COUNT = "Protocol error: too big bulk count string"
INVALID_MBULK_LENGTH = "Protocol error: invalid multibulk length"
INVALID_BULK_LENGTH = "Protocol error: invalid bulk length"
UNAUTHENTICATED_MBULK_LENGTH = "Protocol error: unauthenticated multibulk length"
UNAUTHENTICATED_BULK_LENGTH = "Protocol error: unauthenticated bulk length"
# The phase's own byte budget (gateway.auth_buffer_limit), where the engine would still read on.
TOO_MUCH_BEFORE_AUTH = "too much data before authentication"
# string2ll refuses numbers of this many characters or more (LONG_STR_SIZE).
_LONG_STR_SIZE = 21
_INT_MAX = 2**31 - 1
_LLONG_MAX = 2**63 - 1
# What isspace() is true for in the C locale: skipped before an inline argument, and the bytes a
# closing quote may be followed by.
_C_SPACE = b" \t\n\v\f\r"
# What ends an unquoted inline argument (sdssplitargs): not \v nor \f, which it keeps inside one.
_ARG_END = b" \n\r\t"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"
_UNBALANCED = "Protocol error: unbalanced quotes in request"
# Inline bytes the engine does not read as they are. It never finishes a line holding NUL (it looks
# for the line end in a C string), so the only answer it ever gives one is TOO_BIG_INLINE, once 64 KiB
# have come; the phase gives it at once. valkey 8.1 drops 0xFF bytes from inline arguments (measured:
# ``AU\xffTH`` runs AUTH), which the phase refuses rather than depend on.
_NUL_IN_INLINE = "NUL byte in an inline request (the engine never ends such a line)"
_FF_IN_INLINE = "Protocol error: 0xFF byte in inline request"


class RespProtocolError(AmrError):
    """The byte stream is not valid RESP, or declares more than the limit allows.

    ``too_big`` says whether it was the size limit (rather than malformed input); ``reply`` is the
    RESP error line to send the client before closing; ``detail`` says why, for the audit log, where
    the message alone (the engine's text) would not.
    """

    def __init__(self, message: str, too_big: bool = False, detail: str = "") -> None:
        super().__init__(message)
        self.too_big = too_big
        self.detail = detail or message

    @property
    def reply(self) -> bytes:
        return b"-ERR " + str(self).encode() + b"\r\n"


@dataclass(frozen=True, slots=True)
class Command:
    """One complete client command: its arguments and the exact bytes it arrived as."""

    args: tuple[bytes, ...]
    raw: bytes


def parse_engine_int(text: bytes | bytearray) -> int | None:
    """The number in a request header as the engine's ``string2ll`` reads it, or None where the
    engine refuses it: no sign but ``-``, no leading zero, no spaces, fewer than 21 characters,
    within a signed 64-bit integer."""
    n = len(text)
    if n == 0 or n >= _LONG_STR_SIZE:
        return None
    if text == b"0":
        return 0
    body = text[1:] if text[:1] == b"-" else text
    if not body or not body.isdigit() or not body.isascii() or body[:1] == b"0":
        return None
    value = int(text)
    if not -_LLONG_MAX - 1 <= value <= _LLONG_MAX:
        return None
    return value


def split_inline_args(line: bytes) -> list[bytes]:
    r"""The arguments of one inline command line (without its line end), split exactly as valkey's
    ``sdssplitargs`` does; RespProtocolError where the engine answers "unbalanced quotes".

    Unquoted arguments end at a space, tab or ``\r`` (not at ``\v``/``\f``, which only count as
    blanks before an argument); a quote inside an unquoted argument starts a quoted part of it.
    Double quotes take ``\xHH`` and ``\n \r \t \b \a`` escapes (a backslash before any other byte
    is that byte); single quotes take only ``\'``. A closing quote must be followed by a blank or the
    end of the line, and every quote must be closed. The line must hold no NUL byte (the caller
    refuses those: the engine reads a C string and never finishes such a line).
    """
    if b'"' not in line and b"'" not in line and b"\v" not in line and b"\f" not in line:
        return line.split()
    args: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _C_SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        # An unquoted start, ended by a separator, the end of the line, or a quote; a quoted part
        # always ends the argument.
        while i < n and line[i] not in _ARG_END and line[i] not in b"\"'":
            cur.append(line[i])
            i += 1
        if i < n and line[i] == 0x22:
            i = _read_quoted(line, i + 1, cur, 0x22)
        elif i < n and line[i] == 0x27:
            i = _read_quoted(line, i + 1, cur, 0x27)
        else:
            i += 1
        args.append(bytes(cur))


def _after_closing_quote(line: bytes, i: int) -> int:
    """Where reading goes on after the closing quote at ``i``: it must end the line or be followed
    by a blank."""
    if i + 1 < len(line) and line[i + 1] not in _C_SPACE:
        raise RespProtocolError(_UNBALANCED)
    return i + 1


def _read_quoted(line: bytes, i: int, cur: bytearray, quote: int) -> int:
    """Append the quoted part that starts at ``i`` (after its opening ``quote``) to ``cur``; return
    where reading goes on after its closing quote."""
    n = len(line)
    while i < n:
        c = line[i]
        if c == quote:
            return _after_closing_quote(line, i)
        if c == 0x5C and quote == 0x22:
            i = _read_escape(line, i, cur)
        elif c == 0x5C and i + 1 < n and line[i + 1] == 0x27 == quote:
            cur.append(0x27)
            i += 2
        else:
            cur.append(c)
            i += 1
    raise RespProtocolError(_UNBALANCED)


def _read_escape(line: bytes, i: int, cur: bytearray) -> int:
    """A backslash at ``i`` inside double quotes: ``\\xHH``, a named escape, or the next byte as is."""
    n = len(line)
    if i + 3 < n and line[i + 1] == 0x78 and line[i + 2] in _HEX and line[i + 3] in _HEX:
        cur.append(int(line[i + 2 : i + 4], 16))
        return i + 4
    if i + 1 < n:
        cur.append(_ESCAPES.get(line[i + 1], line[i + 1]))
        return i + 2
    cur.append(0x5C)  # at the end of the line: the quote is left open
    return i + 1


def _refuse_unreadable(data: bytes | bytearray, start: int) -> None:
    """Refuse inline bytes from ``start`` on that the engine does not read as they are."""
    if data.find(b"\0", start) >= 0:
        raise RespProtocolError(TOO_BIG_INLINE, detail=_NUL_IN_INLINE)
    if data.find(b"\xff", start) >= 0:
        raise RespProtocolError(_FF_IN_INLINE)


def choose_bulk_refusal(length: int) -> str:
    """What to answer a bulk string of ``length`` bytes that the phase's budget cannot hold: the
    engine's error where the engine refuses that length too (over proto-max-bulk-len from anyone,
    over 16 KiB before authentication), else the phase's own."""
    if length > PROTO_MAX_BULK_LEN:
        return INVALID_BULK_LENGTH
    if length > UNAUTHENTICATED_BULK_MAX:
        return UNAUTHENTICATED_BULK_LENGTH
    return TOO_MUCH_BEFORE_AUTH


class RequestParser:
    """Splits a client's byte stream into commands (RESP arrays of bulk strings, or inline lines).

    Parses what valkey accepts, with valkey's framing rules, so the commands counted here are the
    commands the node will answer: empty inline lines and ``*0``/``*-1`` arrays are dropped, as the
    node ignores them without a reply. ``feed`` raises RespProtocolError for malformed input, and for
    a command whose declared size (or an incomplete command's bytes) exceeds ``limit``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, HEADER_MAX)
        self._buf = bytearray()
        self._start = 0  # where the current (incomplete) command starts in _buf
        self._pos = 0  # parse position
        self._scan = 0  # where the search for the current line's end resumes
        self._nargs = 0  # arguments still to read in the current array
        self._bulk = -1  # length of the bulk string being read, -1: expecting its "$" header
        self._args: list[bytes] = []

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a complete command yet."""
        return len(self._buf) - self._start

    def take_rest(self) -> bytes:
        """Everything buffered and not yet returned as a command; the parser is empty afterwards."""
        rest = bytes(self._buf[self._start :])
        self._buf = bytearray()
        self._start = self._pos = self._scan = self._nargs = 0
        self._bulk = -1
        self._args = []
        return rest

    def feed(self, data: bytes) -> list[Command]:
        """Add bytes; return the commands they complete, in order."""
        self._buf += data
        out: list[Command] = []
        while True:
            cmd = self._next()
            if cmd is None:
                break
            if cmd.args:
                out.append(cmd)
        if self._start:
            del self._buf[: self._start]
            self._pos -= self._start
            self._scan -= self._start
            self._start = 0
        if len(self._buf) > self.limit:
            raise RespProtocolError(TOO_MUCH_BEFORE_AUTH, too_big=True)
        return out

    def _line(self, max_len: int) -> bytes | None:
        """The next inline line (without its terminator), or None if it has not fully arrived. One
        longer than ``max_len`` is refused as the engine refuses one over its inline limit."""
        buf = self._buf
        end = buf.find(b"\n", max(self._scan, self._pos))
        if end < 0 and len(buf) - self._pos <= max_len:
            self._scan = len(buf)
            return None
        if end < 0 or end - self._pos > max_len:
            raise RespProtocolError(TOO_BIG_INLINE, too_big=True)
        line = bytes(buf[self._pos : end])
        if line.endswith(b"\r"):
            line = line[:-1]
        self._pos = self._scan = end + 1
        return line

    def _header(self, unending: str, invalid: str) -> bytes | None:
        """The next ``*<n>``/``$<n>`` header line (without its CRLF), or None if it has not fully
        arrived. The engine answers ``unending`` to a header that does not end within its inline
        limit and ``invalid`` to one that ends but holds no number it reads; the phase answers the
        same once the header is longer than any number (the first when no line end has come yet)."""
        buf = self._buf
        end = buf.find(b"\n", max(self._scan, self._pos))
        if end < 0 and len(buf) - self._pos <= HEADER_MAX:
            self._scan = len(buf)
            return None
        if end < 0:
            raise RespProtocolError(unending)
        if end - self._pos > HEADER_MAX or buf[end - 1] != 0x0D:
            raise RespProtocolError(invalid)
        line = bytes(buf[self._pos : end - 1])
        self._pos = self._scan = end + 1
        return line

    def _finish(self, args: list[bytes]) -> Command:
        cmd = Command(tuple(args), bytes(self._buf[self._start : self._pos]))
        self._start = self._pos
        self._args = []
        self._nargs = 0
        self._bulk = -1
        return cmd

    def _next(self) -> Command | None:
        buf = self._buf
        if self._nargs == 0:
            if self._pos >= len(buf):
                return None
            if buf[self._pos] != 0x2A:  # not "*": an inline command
                scanned = max(self._scan, self._pos)
                line = self._line(min(self.limit, INLINE_MAX - 2))
                if line is None:
                    _refuse_unreadable(buf, scanned)
                    return None
                _refuse_unreadable(line, 0)
                return self._finish(split_inline_args(line))
            header = self._header(TOO_BIG_MBULK_COUNT, INVALID_MBULK_LENGTH)
            if header is None:
                return None
            n = parse_engine_int(header[1:])
            if n is None or n > _INT_MAX:
                raise RespProtocolError(INVALID_MBULK_LENGTH)
            if n <= 0:
                return self._finish([])
            if (self._pos - self._start) + n * MIN_ARG_BYTES > self.limit:
                # Far more than the engine lets a client that has not authenticated declare.
                raise RespProtocolError(UNAUTHENTICATED_MBULK_LENGTH, too_big=True)
            self._nargs = n
        while self._nargs > 0:
            if self._bulk < 0:
                if self._pos >= len(buf):
                    return None
                if buf[self._pos] != 0x24:  # "$"
                    raise RespProtocolError("Protocol error: expected '$'")
                header = self._header(TOO_BIG_BULK_COUNT, INVALID_BULK_LENGTH)
                if header is None:
                    return None
                length = parse_engine_int(header[1:])
                if length is None or length < 0:
                    raise RespProtocolError(INVALID_BULK_LENGTH)
                need = (self._pos - self._start) + length + 2 + (self._nargs - 1) * MIN_ARG_BYTES
                if need > self.limit:
                    raise RespProtocolError(choose_bulk_refusal(length), too_big=True)
                self._bulk = length
            end = self._pos + self._bulk
            if len(buf) < end + 2:
                return None
            if buf[end : end + 2] != b"\r\n":
                raise RespProtocolError("Protocol error: bulk string must end with CRLF")
            self._args.append(bytes(buf[self._pos : end]))
            self._pos = self._scan = end + 2
            self._bulk = -1
            self._nargs -= 1
        return self._finish(self._args)
