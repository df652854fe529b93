"""Hash slots: which of the 16384 cluster slots a key belongs to (CRC16/XMODEM of the key, or of its
``{hashtag}``, modulo 16384), exactly as the engine computes it."""

from __future__ import annotations

import binascii

SLOTS = 16384


def crc16(data: bytes) -> int:
    """CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum cluster slots use: binascii's
    CRC-CCITT with initial value 0 is exactly that, in C (it runs once per routed command)."""
    return binascii.crc_hqx(data, 0)


def choose_key_slot(key: bytes) -> int:
    """The slot of ``key``: only the part between the first ``{`` and the next ``}`` counts when that
    part is not empty (a hash tag), so related keys can be kept in one slot."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) & (SLOTS - 1)
