"""The little RESP2 that amr's own probes speak to nodes over their unix sockets (the gateway's primary
tracker, the `amr ha` coordinator): encode a command, read one reply; and the redaction of secrets
from engine messages."""

from __future__ import annotations

import asyncio
import re

# ACL password rules (">secret", "#<sha256>") that an engine error might echo back.
_SECRET = re.compile(r"(?<![\w>])[>#<!](?![>\s])\S+")


def redact(text: str) -> str:
    """Hide ACL password rules in an engine message."""
    return _SECRET.sub("[redacted]", text)


class RespError(str):
    """A RESP error reply (``-ERR ...``), kept as a value: an error is still an answer."""


def encode_command(*args: str | int | bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def read_reply(reader: asyncio.StreamReader) -> object:
    """One RESP2 reply: str for simple strings, RespError for errors, int, bytes for bulk strings
    (None for null), lists. Raises ConnectionError on anything else."""
    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode(errors="replace")
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [await read_reply(reader) for _ in range(size)]
    raise ConnectionError("unexpected reply from node")
