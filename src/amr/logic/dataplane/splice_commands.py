"""Which commands of a spliced client the gateway acts on after authentication, and what it puts in
their place (``amr.logic.dataplane.splice_scan`` finds them in the stream): ``CLIENT LIST``, ``INFO``
and ``KILL`` are answered by the gateway (``TakenOver``), an ``AUTH`` or ``HELLO AUTH`` naming an
internal user is refused (``InternalAuth``), and ``CLIENT REPLY`` and ``RESET`` are followed to know
whether the client expects a reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from amr.logic.dataplane.auth import REFUSED_AUTH

# CLIENT subcommands the gateway answers (lower case).
TAKEN_OVER = frozenset({b"list", b"info", b"kill"})
# Names the scanner looks at (lower case, 4 to 6 letters): the ones it takes over or checks, and RESET.
SCANNED_NAMES = frozenset({b"client", b"auth", b"hello", b"reset"})


@dataclass(frozen=True, slots=True)
class TakenOver:
    """A command the gateway answers instead of the engine: its arguments (the name first), and
    whether the client expects a reply to it (not under CLIENT REPLY OFF or SKIP)."""

    args: tuple[bytes, ...]
    reply: bool = True


@dataclass(frozen=True, slots=True)
class InternalAuth:
    """An AUTH or HELLO AUTH naming an internal user: ``REFUSED_AUTH`` goes to the engine instead."""

    raw: bytes = REFUSED_AUTH


Piece = bytes | TakenOver | InternalAuth


def may_be_taken_over(head: bytes) -> bool:
    """Whether an incomplete RESP command starting with ``head`` may turn out to be one the scanner
    acts on (CLIENT LIST/INFO/KILL, AUTH, HELLO, RESET): False once its name (or CLIENT's
    subcommand) rules it out."""
    parts: list[bytes] = []
    pos = head.find(b"\r\n") + 2
    if pos < 2:
        return True
    while len(parts) < 2:
        end = head.find(b"\r\n", pos)
        if end < 0:
            return True
        try:
            size = int(head[pos + 1 : end])
        except ValueError:
            return False
        if size > 6:
            return False
        start = end + 2
        if len(head) < start + size:
            return True
        parts.append(head[start : start + size].lower())
        if parts[0] not in SCANNED_NAMES:
            return False
        if parts[0] != b"client":
            return True
        pos = start + size + 2
    return parts[1] in TAKEN_OVER


def well_formed(sub: bytes, argc: int) -> bool:
    """Arity as the engine checks it before anything else (a malformed one goes to the engine,
    which answers the arity error)."""
    if sub == b"info":
        return argc == 2
    if sub == b"kill":
        return argc >= 3
    return argc >= 2
