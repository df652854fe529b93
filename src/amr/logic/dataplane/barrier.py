"""Where, in a spliced connection's node replies, the reply to a command the gateway took over
belongs, without reading the replies.

The gateway sends the engine ``PING <token>`` in place of the command it answers itself (a
*barrier*): the engine answers it in the client's order, after every command sent before it (inside
MULTI, as an element of EXEC's reply). ``BarrierWatch`` finds the token's bulk string in the byte
stream and gives back what came before it, so the gateway writes its own reply exactly there. A
token is a per-connection random prefix and a serial number: no reply can hold it unless the
client knew it, and it only exists once the command is on its way to the engine.

In RESP2 pub/sub mode the engine answers PING with ``*2 pong <token>``: the watch reports that form
(``subscribed``), in which the engine would have refused the command, and drops it whole. A barrier
the engine never answers (a DISCARDed MULTI, replies turned off inside one) is dropped when a later
one is found. A CLIENT ID sent at authentication is answered first: ``parse_id_reply`` reads it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from amr.logic.resp.frames import render_command

PREFIX_LEN = 20  # hex characters of a connection's random token prefix
_SERIAL_LEN = 8
TOKEN_LEN = PREFIX_LEN + _SERIAL_LEN
_PONG = b"*2\r\n$4\r\npong\r\n"  # the head of PING's reply in RESP2 pub/sub mode

CLIENT_ID_COMMAND = render_command((b"CLIENT", b"ID"))


@dataclass(frozen=True, slots=True)
class Found:
    """A barrier's reply: which one (``serial``) and whether it came in the RESP2 pub/sub form."""

    serial: int
    subscribed: bool


def parse_id_reply(buf: bytes) -> tuple[int | None, int] | None:
    """The connection's id from the reply to CLIENT ID at the start of ``buf`` and the bytes it
    takes; None while its line is incomplete. An error reply (the user may not run CLIENT ID)
    gives no id; a reply of any other kind is not consumed."""
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    kind = buf[:1]
    if kind == b":":
        try:
            return int(buf[1:end]), end + 2
        except ValueError:
            return None, end + 2
    if kind in (b"-", b"!"):
        return None, end + 2
    return None, 0


def _suffix_in(buf: bytes, pattern: bytes) -> int:
    """The length of the longest end of ``buf`` that is a proper start of ``pattern``."""
    for k in range(min(len(buf), len(pattern) - 1), 0, -1):
        if buf.endswith(pattern[:k]):
            return k
    return 0


class BarrierWatch:
    """The barriers one spliced connection has in flight, and the search for their replies."""

    __slots__ = ("prefix", "needle", "pending", "serial", "tail")

    def __init__(self, prefix: bytes) -> None:
        assert len(prefix) == PREFIX_LEN
        self.prefix = prefix
        self.needle = b"$%d\r\n" % TOKEN_LEN + prefix
        self.pending: deque[tuple[int, bool]] = deque()  # (serial, sent inside MULTI)
        self.serial = 0
        self.tail = b""  # the end of what was fed that may be the start of a barrier's reply

    def add(self, in_multi: bool) -> tuple[int, bytes]:
        """A new barrier: its serial and the command to send the engine in the taken-over one's place."""
        self.serial += 1
        self.pending.append((self.serial, in_multi))
        token = self.prefix + b"%08x" % (self.serial & 0xFFFFFFFF)
        return self.serial, render_command((b"PING", token))

    def feed(self, data: bytes) -> tuple[list[bytes | Found], bytes]:
        """Take node bytes; return the pieces up to the first barrier reply in them (the bytes
        before it, then ``Found``), and the bytes after it, not read yet. Bytes that may be the
        start of a barrier's reply are kept back until the rest arrives."""
        buf = self.tail + data if self.tail else data
        self.tail = b""
        needle = self.needle
        start = 0
        while True:
            i = buf.find(needle, start)
            if i < 0:
                keep = max(_suffix_in(buf, _PONG + needle), _suffix_in(buf, needle))
                return self._hold(buf, len(buf) - keep), b""
            end = i + len(needle) + _SERIAL_LEN + 2
            pong = i >= len(_PONG) and buf[i - len(_PONG) : i] == _PONG
            if end > len(buf):
                return self._hold(buf, i - len(_PONG) if pong else i), b""
            serial = _serial(buf[end - _SERIAL_LEN - 2 : end - 2]) if buf[end - 2 : end] == b"\r\n" else None
            barrier = self._take(serial) if serial is not None else None
            if barrier is None:
                start = i + 1
                continue
            # Inside MULTI the token is an element of EXEC's reply: "*2 pong" before it is not PING's.
            subscribed = pong and not barrier[1]
            begin = i - len(_PONG) if subscribed else i
            out: list[bytes | Found] = [buf[:begin]] if begin else []
            out.append(Found(barrier[0], subscribed))
            return out, buf[end:]

    def _hold(self, buf: bytes, at: int) -> list[bytes | Found]:
        self.tail = buf[at:]
        return [buf[:at]] if at > 0 else []

    def _take(self, serial: int) -> tuple[int, bool] | None:
        """The pending barrier ``serial`` (dropping older ones the engine never answered)."""
        if not any(s == serial for s, _ in self.pending):
            return None
        barrier = self.pending.popleft()
        while barrier[0] != serial:
            barrier = self.pending.popleft()
        return barrier


def _serial(text: bytes) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None
