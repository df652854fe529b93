"""Brute-force protection for the gateway's authentication phase: failures counted per source, in a
fixed-size table that every gateway worker can share.

The table is a flat buffer (a header and ``slots`` fixed-size slots), so the gateway can map one file
into all its worker processes (``amr.gateway.guard_table``) and a failure counted by one worker
blocks the source on all of them, with no extra service and a size fixed when it is created. This
module only reads and writes the buffer it is given; locking and the file are the gateway's.

Sources are counted per IPv4 address and per IPv6 /64 (an IPv4-mapped IPv6 address counts as its
IPv4 address): one host or site usually holds a whole /64, so moving between its addresses gains an
attacker nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct

# Slots in a shared table: sources with recent failures or blocks remembered at once (40 bytes each).
DEFAULT_SLOTS = 16384
# Slots looked at for one source (from where its hash points): a source lives in one of them.
PROBES = 8
MAGIC = b"amrgrd03"
# magic, hash key, number of slots, the latest end of any block (so that a check costs one read while
# nobody is blocked, the common case at every accept).
HEADER = struct.Struct("<8s16sI4xd")
_LAST_BLOCK = struct.Struct("<d")
_LAST_BLOCK_AT = 32
# source digest, start of its current counting window, end of its block, failures in the current
# window, failures in the window before it (windows are back to back, from the source's first failure).
SLOT = struct.Struct("<16sddII")
_EMPTY = bytes(16)
# How far apart two workers' readings of the clock may be (one read it just before the other wrote):
# a value up to this far in the future is still this boot's.
CLOCK_SLACK = 5.0


def choose_source_key(source: str) -> bytes:
    """What failures from ``source`` are counted under: its IPv4 address, or its IPv6 /64 (an
    IPv4-mapped address counts as the IPv4 address); a source that is not an address, as is.

    Sources come from ``accept``, so an IPv4 address is already in its one canonical dotted form:
    it is used as it is, without parsing (this runs for every accepted connection)."""
    if source.startswith("::ffff:") and "." in source:
        source = source[7:]
    if ":" not in source:
        return b"4:" + source.encode()
    try:
        addr = ipaddress.ip_address(source.split("%", 1)[0])
    except ValueError:
        return b"s:" + source.encode()
    return b"6:" + addr.packed[:8]


def table_size(slots: int) -> int:
    """Bytes of a table with ``slots`` slots."""
    return HEADER.size + slots * SLOT.size


def init_table(buf: bytearray | memoryview, hash_key: bytes, slots: int) -> None:
    """Write an empty table into ``buf`` (``table_size(slots)`` bytes): its header, all slots free.
    ``hash_key`` (16 random bytes) makes where a source's slot lies unpredictable to clients."""
    buf[: table_size(slots)] = bytes(table_size(slots))
    HEADER.pack_into(buf, 0, MAGIC, hash_key, slots, 0.0)


def validate_table(buf: bytearray | memoryview, slots: int) -> bool:
    """Whether ``buf`` holds a table this code wrote with ``slots`` slots (else it is rewritten)."""
    if len(buf) != table_size(slots):
        return False
    magic, _key, count, _last = HEADER.unpack_from(buf, 0)
    return bool(magic == MAGIC and count == slots)


class AuthFailureGuard:
    """Decides which sources are refused after repeated authentication failures.

    A source with ``limit`` failures within ``window`` seconds is blocked for ``cooldown`` seconds;
    counting starts again after a block. The failures within the last ``window`` seconds are
    estimated from two counts per source (its current window, which starts at its first failure,
    and the previous one; see ``estimate``), the sliding-window counter rate limiters use: a burst
    from a source with no failures in the last two windows is stopped exactly at its ``limit``-th
    failure, and any burst by its ``limit + 1``-th; failures spread evenly are counted as a true
    sliding window would; at worst (one batch at the very end of a window, the next late in the
    following one) a source gets ``2 * (limit - 1)`` failures within one window length, but never
    in a burst. A ``limit`` of 0 or less disables the protection. Time is passed in (``now``): a monotonic clock that every
    process sharing the table reads alike (Linux's CLOCK_MONOTONIC is system-wide). Values no clock
    of this boot could have written (a window starting in the future, a block ending later than a
    cooldown from now, each beyond ``CLOCK_SLACK``: a table from before a reboot) count as nothing.

    Memory is the table's fixed size whatever the clients do. A source that finds its ``PROBES``
    slots all in use takes the one whose source is not blocked and was counted least recently (if
    all are blocked, the one whose block ends first).

    ``buf`` is the table (``init_table``); without it the guard keeps a private one of ``slots``.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        cooldown: float,
        buf: bytearray | memoryview | None = None,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.cooldown = cooldown
        if buf is None:
            buf = bytearray(table_size(max(slots, PROBES)))
            init_table(buf, _EMPTY, max(slots, PROBES))
        self._buf = buf
        _magic, self._hash_key, self.slots, _last = HEADER.unpack_from(buf, 0)

    def _digest(self, source: str) -> bytes:
        return hashlib.blake2b(choose_source_key(source), key=self._hash_key, digest_size=16).digest()

    def _offsets(self, digest: bytes) -> list[int]:
        start = int.from_bytes(digest[:8], "little")
        return [HEADER.size + ((start + k) % self.slots) * SLOT.size for k in range(min(PROBES, self.slots))]

    def _blocked_until(self, until: float, now: float) -> bool:
        return now < until <= now + self.cooldown + CLOCK_SLACK

    def is_blocked(self, source: str, now: float) -> bool:
        """Whether connections from ``source`` are refused at ``now``."""
        buf = self._buf
        if not self._blocked_until(_LAST_BLOCK.unpack_from(buf, _LAST_BLOCK_AT)[0], now):
            return False  # no block in the table ends later than now
        digest = self._digest(source)
        for off in self._offsets(digest):
            d, _start, until, _count, _previous = SLOT.unpack_from(buf, off)
            if d == digest:
                return self._blocked_until(until, now)
        return False

    def record_failure(self, source: str, now: float) -> bool:
        """Count a failed authentication; return True if it makes the source blocked. (The gateway
        calls this under its table lock: it reads, decides and writes one slot.)"""
        if self.limit <= 0:
            return False
        digest = self._digest(source)
        off = self._slot_for(digest, now)
        d, start, until, count, previous = SLOT.unpack_from(self._buf, off)
        if d != digest or not self._blocked_until(until, now):
            until = 0.0
        window = self.window
        if d != digest or start > now + CLOCK_SLACK or now - start >= 2 * window:
            # A source's windows start at its first failure (a burst from a quiet source is counted
            # in one window, exactly); a window older than the previous one counts nothing.
            start, count, previous = now, 0, 0
        elif now - start >= window:
            start, count, previous = start + window, 0, count
        count += 1
        blocked: bool = self.estimate(count, previous, now - start) >= self.limit
        if blocked:
            until = max(until, now + self.cooldown)
            count = previous = 0  # counting starts again after a block
        SLOT.pack_into(self._buf, off, digest, start, until, count, previous)
        if blocked:
            # After the slot: a worker that sees the new end of the latest block finds the slot.
            (last,) = _LAST_BLOCK.unpack_from(self._buf, _LAST_BLOCK_AT)
            if not self._blocked_until(last, now) or until > last:
                _LAST_BLOCK.pack_into(self._buf, _LAST_BLOCK_AT, until)
        return blocked

    def estimate(self, count: int, previous: int, into_window: float) -> float:
        """Failures within the last ``window`` seconds, estimated from the counts of the current
        window (``into_window`` seconds old) and of the previous one, taken as spread evenly: the
        previous window's share is what the sliding window still covers of it."""
        if self.window <= 0:
            return float(count)
        return count + previous * max(0.0, 1.0 - into_window / self.window)

    def _slot_for(self, digest: bytes, now: float) -> int:
        """The offset of ``digest``'s slot, or of the slot it takes over."""
        buf = self._buf
        best_off, best_rank = -1, (2, 0.0)
        for off in self._offsets(digest):
            d, start, until, count, previous = SLOT.unpack_from(buf, off)
            if d == digest:
                return off
            blocked = self._blocked_until(until, now)
            live = blocked or self._counting(start, count + previous, now)
            # Free slots first, then unblocked ones counted longest ago, then the first block to end.
            rank = (1, until) if blocked else (0, start) if live else (-1, 0.0)
            if best_off < 0 or rank < best_rank:
                best_off, best_rank = off, rank
        return best_off

    def _counting(self, start: float, failures: int, now: float) -> bool:
        """Whether a slot's failures still count at ``now`` (its window or the next one)."""
        return failures > 0 and start - CLOCK_SLACK <= now < start + 2 * self.window

    def live_sources(self, now: float) -> int:
        """How many sources have failures that still count or are blocked at ``now``."""
        n = 0
        for off in range(HEADER.size, len(self._buf), SLOT.size):
            d, start, until, count, previous = SLOT.unpack_from(self._buf, off)
            if d != _EMPTY and (
                self._blocked_until(until, now) or self._counting(start, count + previous, now)
            ):
                n += 1
        return n

    def __len__(self) -> int:
        """Slots in use (by a source with failures counted or a block, current or not)."""
        return sum(
            SLOT.unpack_from(self._buf, off)[0] != _EMPTY
            for off in range(HEADER.size, len(self._buf), SLOT.size)
        )
