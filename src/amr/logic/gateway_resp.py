"""RESP framing for the gateway's authentication phase: client commands in, node reply boundaries out.

Both parsers are incremental (bytes may arrive split anywhere) and bounded: the request parser never
holds more than its limit, and refuses a declared length that could not fit at once, before the bytes
arrive. They are only used until a connection has authenticated; after that the gateway splices bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from amr.errors import AmrError

# A "*<n>" or "$<n>" header line is at most this long (a 20-digit number and a sign fit).
HEADER_MAX = 32
# The smallest encoding of one argument: "$0\r\n\r\n".
MIN_ARG_BYTES = 6
# A node's reply line (simple string, error, number) longer than this is treated as a protocol error.
REPLY_LINE_MAX = 1 << 16
# How much of a reply's first line is kept for deciding about it.
REPLY_HEAD_MAX = 128


class RespProtocolError(AmrError):
    """The byte stream is not valid RESP, or declares more than the limit allows.

    ``too_big`` says whether it was the size limit (rather than malformed input); ``reply`` is the
    RESP error line to send the client before closing.
    """

    def __init__(self, message: str, too_big: bool = False) -> None:
        super().__init__(message)
        self.too_big = too_big

    @property
    def reply(self) -> bytes:
        return b"-ERR " + str(self).encode() + b"\r\n"


@dataclass(frozen=True, slots=True)
class Command:
    """One complete client command: its arguments and the exact bytes it arrived as."""

    args: tuple[bytes, ...]
    raw: bytes


def _parse_int(text: bytes | bytearray) -> int | None:
    body = text[1:] if text[:1] == b"-" else text
    if not body or not body.isdigit():
        return None
    return int(text)


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
            raise RespProtocolError("request too large before authentication", too_big=True)
        return out

    def _line(self, max_len: int, crlf: bool) -> bytes | None:
        """The next line (without its terminator), or None if it has not fully arrived."""
        buf = self._buf
        end = buf.find(b"\n", max(self._scan, self._pos))
        if end < 0:
            if len(buf) - self._pos > max_len:
                if crlf:
                    raise RespProtocolError("Protocol error: invalid header line")
                raise RespProtocolError("Protocol error: too big inline request", too_big=True)
            self._scan = len(buf)
            return None
        if end - self._pos > max_len:
            if crlf:
                raise RespProtocolError("Protocol error: invalid header line")
            raise RespProtocolError("Protocol error: too big inline request", too_big=True)
        line = bytes(buf[self._pos : end])
        if line.endswith(b"\r"):
            line = line[:-1]
        elif crlf:
            raise RespProtocolError("Protocol error: header line must end with CRLF")
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
                line = self._line(self.limit, crlf=False)
                if line is None:
                    return None
                return self._finish(line.split())
            header = self._line(HEADER_MAX, crlf=True)
            if header is None:
                return None
            n = _parse_int(header[1:])
            if n is None:
                raise RespProtocolError("Protocol error: invalid multibulk length")
            if n <= 0:
                return self._finish([])
            if (self._pos - self._start) + n * MIN_ARG_BYTES > self.limit:
                raise RespProtocolError("Protocol error: too many arguments before authentication", True)
            self._nargs = n
        while self._nargs > 0:
            if self._bulk < 0:
                if self._pos >= len(buf):
                    return None
                if buf[self._pos] != 0x24:  # "$"
                    raise RespProtocolError("Protocol error: expected '$'")
                header = self._line(HEADER_MAX, crlf=True)
                if header is None:
                    return None
                length = _parse_int(header[1:])
                if length is None or length < 0:
                    raise RespProtocolError("Protocol error: invalid bulk length")
                need = (self._pos - self._start) + length + 2 + (self._nargs - 1) * MIN_ARG_BYTES
                if need > self.limit:
                    raise RespProtocolError("Protocol error: bulk too large before authentication", True)
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


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete top-level reply from the node: its type byte and the start of its first line."""

    kind: bytes
    head: bytes

    @property
    def is_error(self) -> bool:
        return self.kind in (b"-", b"!")

    @property
    def error_code(self) -> str:
        """The error's code word (``WRONGPASS``, ``NOAUTH``, ``ERR``), never its free text."""
        if not self.is_error or self.kind == b"!":
            return "ERR" if self.is_error else ""
        word = self.head[1:].split(b" ", 1)[0]
        return word.decode("ascii", "replace")[:32]


_BULK_TYPES = frozenset(b"$!=")
_AGGREGATE_TYPES = frozenset(b"*%~>|")
_PAIRED_TYPES = frozenset(b"%|")
_LINE_TYPES = frozenset(b"+-:_,#(")


class ReplyScanner:
    """Finds where each top-level reply ends in a node's RESP2/RESP3 stream, without keeping payloads.

    Bulk payloads are skipped by count; only the current line is buffered (bounded). Attributes
    (``|``) and out-of-band pushes (``>``) at the top level are not replies to a command and are not
    returned. ``feed`` raises RespProtocolError if the stream is not RESP.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # payload bytes (with CRLF) still to skip
        self._stack: list[list[int]] = []  # [elements left, is_attribute] per open aggregate
        self._head: Reply | None = None

    def feed(self, data: bytes) -> list[Reply]:
        """Add bytes; return the replies they complete, in order."""
        out: list[Reply] = []
        view = memoryview(data)
        if self._skip:
            take = min(self._skip, len(view))
            self._skip -= take
            view = view[take:]
            if self._skip:
                return out
            self._complete(out)
        self._buf += view
        buf = self._buf
        pos = 0
        while pos < len(buf):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > REPLY_LINE_MAX:
                    raise RespProtocolError("reply line too long")
                break
            kind = buf[pos]
            if not self._stack and kind != 0x7C:
                self._head = Reply(bytes((kind,)), bytes(buf[pos : min(end, pos + REPLY_HEAD_MAX)]))
            line_start = pos
            pos = end + 2
            if kind in _LINE_TYPES:
                self._complete(out)
                continue
            n = _parse_int(buf[line_start + 1 : end])
            if n is None:
                raise RespProtocolError("invalid reply length")
            if kind in _BULK_TYPES:
                if n < 0:
                    self._complete(out)
                    continue
                available = len(buf) - pos
                if available >= n + 2:
                    pos += n + 2
                    self._complete(out)
                    continue
                self._skip = n + 2 - available
                pos = len(buf)
                break
            if kind in _AGGREGATE_TYPES:
                count = n * (2 if kind in _PAIRED_TYPES else 1)
                if count <= 0:
                    self._complete(out)
                else:
                    self._stack.append([count, 1 if kind == 0x7C else 0])
                continue
            raise RespProtocolError("unknown reply type")
        del buf[:pos]
        return out

    def _complete(self, out: list[Reply]) -> None:
        """A value ended: close the aggregates it completes; emit the reply if it was top level."""
        stack = self._stack
        while stack:
            top = stack[-1]
            top[0] -= 1
            if top[0] > 0:
                return
            stack.pop()
            if top[1]:
                # An attribute ended: it is not an element of its parent, nor a reply at top level.
                return
        head, self._head = self._head, None
        if head is not None and head.kind != b">":
            out.append(head)
