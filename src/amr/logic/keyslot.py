"""Hash slots: which of the 16384 cluster slots a key belongs to (CRC16/XMODEM of the key, or of its
``{hashtag}``, modulo 16384), exactly as the engine computes it."""

from __future__ import annotations

SLOTS = 16384


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum cluster slots use."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def choose_key_slot(key: bytes) -> int:
    """The slot of ``key``: only the part between the first ``{`` and the next ``}`` counts when that
    part is not empty (a hash tag), so related keys can be kept in one slot."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) & (SLOTS - 1)
