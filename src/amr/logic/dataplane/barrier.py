"""Where, in a spliced connection's node replies, the reply to a command the gateway took over
belongs, without reading the replies.

The gateway sends the engine ``UNSUBSCRIBE <token>`` in place of the command it answers itself (a
*barrier*): the engine answers it in the client's order, after every command sent before it (inside
MULTI, as an element of EXEC's reply), whatever the connection's state: a pub/sub confirmation is
sent even under CLIENT REPLY OFF or SKIP, in RESP2 pub/sub mode, and changes nothing when the
client never subscribed to the token. ``BarrierWatch`` finds that confirmation in the byte stream
and gives back what came before it, so the gateway writes its own reply exactly there. A token is a
per-connection random prefix and a serial number: no reply can hold it unless the client knew it,
and it only exists once the command is on its way to the engine.

The confirmation also says the client's protocol (an array in RESP2, a push in RESP3) and how many
subscriptions it has (RESP2 with some: pub/sub mode, where the engine would have refused the
command). A barrier the engine never answers (a DISCARDed MULTI) is dropped when a later one is
found. A CLIENT ID sent at authentication is answered first: ``parse_id_reply`` reads it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from amr.logic.resp.frames import render_command

PREFIX_LEN = 20  # hex characters of a connection's random token prefix
_SERIAL_LEN = 8
TOKEN_LEN = PREFIX_LEN + _SERIAL_LEN
_HEADS = (b"*3\r\n$11\r\nunsubscribe\r\n", b">3\r\n$11\r\nunsubscribe\r\n")  # RESP2, RESP3
_HEAD_LEN = len(_HEADS[0])
_COUNT_MAX = 24  # ":<count>\r\n"

CLIENT_ID_COMMAND = render_command((b"CLIENT", b"ID"))


@dataclass(frozen=True, slots=True)
class Found:
    """A barrier's confirmation: which barrier (``serial``), whether the client speaks RESP3, and
    how many channels and patterns it is subscribed to."""

    serial: int
    resp3: bool
    subscriptions: int


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
    """The barriers one spliced connection has in flight, and the search for their confirmations."""

    __slots__ = ("prefix", "needle", "pending", "serial", "tail")

    def __init__(self, prefix: bytes) -> None:
        assert len(prefix) == PREFIX_LEN
        self.prefix = prefix
        self.needle = b"$%d\r\n" % TOKEN_LEN + prefix
        self.pending: deque[int] = deque()  # serials in flight
        self.serial = 0
        self.tail = b""  # the end of what was fed that may be the start of a confirmation

    def add(self) -> tuple[int, bytes]:
        """A new barrier: its serial and the command to send the engine in the taken-over one's place."""
        self.serial += 1
        self.pending.append(self.serial)
        token = self.prefix + b"%08x" % (self.serial & 0xFFFFFFFF)
        return self.serial, render_command((b"UNSUBSCRIBE", token))

    def feed(self, data: bytes) -> tuple[list[bytes | Found], bytes]:
        """Take node bytes; return the pieces up to the first barrier confirmation in them (the
        bytes before it, then ``Found``), and the bytes after it, not read yet. Bytes that may be
        the start of a confirmation are kept back until the rest arrives."""
        buf = self.tail + data if self.tail else data
        self.tail = b""
        needle = self.needle
        start = 0
        while True:
            i = buf.find(needle, start)
            if i < 0:
                keep = max(_suffix_in(buf, head + needle) for head in _HEADS)
                return self._hold(buf, len(buf) - keep), b""
            head = buf[i - _HEAD_LEN : i] if i >= _HEAD_LEN else b""
            if head not in _HEADS:
                start = i + 1  # not a confirmation's (it cannot be: the token is the gateway's)
                continue
            token_end = i + len(needle) + _SERIAL_LEN
            end = buf.find(b"\r\n", token_end + 2, token_end + 2 + _COUNT_MAX)
            if end < 0:
                if len(buf) - token_end < 2 + _COUNT_MAX:
                    return self._hold(buf, i - _HEAD_LEN), b""
                start = i + 1
                continue
            serial = _number(buf[token_end - _SERIAL_LEN : token_end], 16)
            count = _number(buf[token_end + 3 : end], 10)
            if serial is None or count is None or buf[token_end : token_end + 3] != b"\r\n:":
                start = i + 1
                continue
            if not self._take(serial):
                start = i + 1
                continue
            begin = i - _HEAD_LEN
            out: list[bytes | Found] = [buf[:begin]] if begin else []
            out.append(Found(serial, head == _HEADS[1], count))
            return out, buf[end + 2 :]

    def _hold(self, buf: bytes, at: int) -> list[bytes | Found]:
        self.tail = buf[at:]
        return [buf[:at]] if at > 0 else []

    def _take(self, serial: int) -> bool:
        """Whether ``serial`` is in flight; it (and older ones the engine never answered) is done."""
        if serial not in self.pending:
            return False
        while self.pending.popleft() != serial:
            pass
        return True


def _number(text: bytes, base: int) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None
