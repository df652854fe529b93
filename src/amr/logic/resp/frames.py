"""Framing a node's RESP2/RESP3 reply stream into whole replies, as the exact bytes that arrived.

The router forwards replies byte-exact (``+OK`` stays ``+OK``, RESP3 maps, sets, doubles and
attributes pass untouched) and only needs to know where each top-level reply ends. ``ReplyFramer`` is
incremental and keeps a scan position, so a reply arriving in many pieces is scanned once. The helpers
below read the few replies the router merges (integers, bulk strings, arrays).
"""

from __future__ import annotations

from amr.errors import AmrError

# A reply header line (type byte, length or simple value) longer than this is not RESP we accept.
LINE_MAX = 1 << 20

_LINE = frozenset(b"+-:_,#(")
_BULK = frozenset(b"$!=")
_AGG = frozenset(b"*~>")
_PAIRS = frozenset(b"%")
_ATTR = 0x7C  # "|"


class ReplyFrameError(AmrError):
    """The node's byte stream is not RESP."""


def scan_values(buf: bytes | bytearray, pos: int, need: int) -> tuple[int, int]:
    """Scan ``need`` complete values from ``pos``; return (position reached, values still needed).

    ``need`` is 0 when they are complete; otherwise the position is where scanning must resume (the
    start of an incomplete value). An attribute is not a value: it adds the value it annotates."""
    size = len(buf)
    while need:
        if pos >= size:
            return pos, need
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if size - pos > LINE_MAX:
                raise ReplyFrameError("reply line too long")
            return pos, need
        kind = buf[pos]
        if kind in _LINE:
            pos = eol + 2
            need -= 1
            continue
        try:
            n = int(buf[pos + 1 : eol])
        except ValueError as e:
            raise ReplyFrameError("invalid reply length") from e
        if kind in _BULK:
            if n < 0:
                pos = eol + 2
            else:
                end = eol + 4 + n
                if end > size:
                    return pos, need
                pos = end
            need -= 1
        elif kind in _AGG:
            pos = eol + 2
            need += max(n, 0) - 1
        elif kind in _PAIRS:
            pos = eol + 2
            need += 2 * max(n, 0) - 1
        elif kind == _ATTR:
            pos = eol + 2
            need += 2 * max(n, 0)
        else:
            raise ReplyFrameError("unknown reply type")
    return pos, 0


class ReplyFramer:
    """Splits a node's reply stream into top-level replies (push messages included: a frame starting
    with ``>`` is out of band). Holds at most the current incomplete reply."""

    __slots__ = ("_buf", "_pos", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # where scanning resumes inside the current reply
        self._need = 0  # values still needed to complete it (0: none started)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_partial(self) -> tuple[bytes, int] | None:
        """For an incomplete reply that is a bulk string with its header in: its bytes so far and
        how many are still to come, the framer starting afresh after it; None otherwise (the
        router passes such a reply on as it arrives, ``NodeLink``)."""
        buf = self._buf
        if buf[:1] != b"$":
            return None
        eol = buf.find(b"\r\n", 0, 24)
        if eol < 0:
            return None
        try:
            n = int(buf[1:eol])
        except ValueError:
            return None
        left = eol + 2 + n + 2 - len(buf)
        if n < 0 or left <= 0:
            return None
        self._buf = bytearray()
        self._pos = self._need = 0
        return bytes(buf), left

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the replies they complete, in order, as the bytes that arrived."""
        out: list[bytes] = []
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
            start, pos, need = 0, self._pos, self._need or 1
        else:
            buf = data
            start, pos, need = 0, 0, 1
        size = len(buf)
        while True:
            pos, need = scan_values(buf, pos, need)
            if need:
                break
            if buf is data:
                out.append(data if start == 0 and pos == size else data[start:pos])
            else:
                # One copy of a big reply, not two (a slice of a bytearray is a bytearray).
                out.append(bytes(memoryview(buf)[start:pos]))
            start = pos
            if pos >= size:
                break
            need = 1
        if start >= size:
            self._buf = bytearray()
            self._pos = self._need = 0
        else:
            self._buf = bytearray(buf[start:])
            self._pos = pos - start
            self._need = need
        return out


def split_aggregate(frame: bytes) -> list[bytes]:
    """The elements of an array/set/push reply (a map's keys and values, in order), as frames; an
    empty list for a null or empty aggregate. Raise ReplyFrameError if ``frame`` is not one."""
    eol = frame.find(b"\r\n")
    if eol < 0 or frame[0] not in b"*~%>":
        raise ReplyFrameError("not an aggregate reply")
    n = int(frame[1:eol])
    if frame[0] == 0x25:
        n *= 2
    out: list[bytes] = []
    pos = eol + 2
    for _ in range(max(n, 0)):
        end, need = scan_values(frame, pos, 1)
        if need:
            raise ReplyFrameError("truncated aggregate")
        out.append(frame[pos:end])
        pos = end
    return out


def parse_integer(frame: bytes) -> int | None:
    """The value of an integer reply; None for anything else."""
    if frame[:1] != b":":
        return None
    return int(frame[1:-2])


def parse_bulk(frame: bytes) -> bytes | None:
    """The payload of a bulk (or RESP3 verbatim, without its format) or simple string reply; None for
    a null or anything else."""
    kind = frame[:1]
    if kind == b"+":
        return frame[1:-2]
    if kind not in (b"$", b"="):
        return None
    eol = frame.find(b"\r\n")
    n = int(frame[1:eol])
    if n < 0:
        return None
    body = frame[eol + 2 : eol + 2 + n]
    return body[4:] if kind == b"=" else body


def render_bulk(payload: bytes) -> bytes:
    """A bulk string reply."""
    return b"$%d\r\n%s\r\n" % (len(payload), payload)


def render_command(args: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
