"""How the EnterpriseCluster router reads a client's commands beyond hiredis: inline commands
(space-separated words on a line, as typed into nc or telnet) read as the engine reads them, and
the size of a RESP command (hiredis cannot say where in its buffer a command ended)."""

from __future__ import annotations

from dataclasses import dataclass

# An inline line the engine would not take whole: longer than this without its newline.
INLINE_MAX = 64 << 10


@dataclass(frozen=True, slots=True)
class InlineRead:
    """What a client's bytes hold before their first RESP array: the inline commands (each its
    words), an incomplete last line to keep for the next bytes, the bytes from the first RESP array
    on, and whether the incomplete line is already too long (a protocol error)."""

    commands: list[list[bytes]]
    partial: bytes
    rest: bytes
    too_big: bool = False


def parse_inline_commands(buf: bytes) -> InlineRead:
    """Read the inline commands at the start of ``buf`` (blank lines are skipped, as the engine does)."""
    commands: list[list[bytes]] = []
    while buf and buf[:1] != b"*":
        end = buf.find(b"\n")
        if end < 0:
            return InlineRead(commands, buf, b"", len(buf) > INLINE_MAX)
        args = buf[:end].split()
        buf = buf[end + 1 :]
        if args:
            commands.append(args)
    return InlineRead(commands, b"", buf)


def measure_command(args: list[bytes]) -> int:
    """How many bytes a command takes as a RESP array of bulk strings (TypeError for an argument
    that is not a bulk string): a client's RESP is canonical, so this is what it sent."""
    size = 3 + len(b"%d" % len(args))
    for arg in args:
        if type(arg) is not bytes:
            raise TypeError("not a bulk string")
        n = len(arg)
        size += n + 5 + (1 if n < 10 else 2 if n < 100 else len(b"%d" % n))
    return size
