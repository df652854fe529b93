"""Where each top-level reply ends in a node's RESP2/RESP3 stream, during the gateway's
authentication phase: only each reply's type and the start of its first line are kept.

The scanner is incremental (bytes may arrive split anywhere) and bounded: bulk payloads are skipped
by count and only the current line is buffered, up to a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from amr.logic.resp.requests import RespProtocolError

# A node's reply line (simple string, error, number) longer than this is treated as a protocol error.
REPLY_LINE_MAX = 1 << 16
# How much of a reply's first line is kept for deciding about it.
REPLY_HEAD_MAX = 128


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


def _parse_int(text: bytes | bytearray) -> int | None:
    """A reply's length: an optional minus sign and digits."""
    body = text[1:] if text[:1] == b"-" else text
    if not body or not body.isdigit():
        return None
    return int(text)


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
