"""What the router's node connections owe: the items each one matches its replies to, in order.

``Pending`` (a client command answered by one node, or by the router itself: it is its own
client-queue entry), ``Streamed`` (a big command sent as it arrived), ``Merged`` with its ``Part``s
(a command split or fanned out across nodes) and ``Swallow`` (a reply nobody waits for: replayed
AUTH/HELLO, ASKING). ``Link`` is what a command is sent over, a client's own connection or its lane
on a shared one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Pending:
    """A client command answered by one node (or by the router itself): a client-queue entry."""

    __slots__ = ("reply", "raw", "slot", "tries")

    def __init__(self, raw: bytes = b"", slot: int = -1, reply: bytes | None = None) -> None:
        self.reply = reply
        self.raw = raw
        self.slot = slot
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        self.reply = frame


class Streamed(Pending):
    """A big command sent to its node as it arrived (``amr.logic.dataplane.request_stream``): the router
    does not have it to send again, so a redirect (its slot moving, a failover) reaches the client
    as TRYAGAIN, which it may retry."""

    __slots__ = ()

    def __init__(self, slot: int) -> None:
        super().__init__(b"", slot)
        self.tries = 1 << 30  # never retried by the router

    def deliver(self, frame: bytes) -> None:
        if frame[:1] == b"-" and frame.split(b" ", 1)[0] in _REDIRECTS:
            frame = STREAMED_REDIRECT_REPLY
        self.reply = frame


_REDIRECTS = frozenset({b"-MOVED", b"-ASK", b"-TRYAGAIN", b"-CLUSTERDOWN"})
STREAMED_REDIRECT_REPLY = b"-TRYAGAIN a large command cannot be resent while its slot moves or its shard fails over; send it again\r\n"


class Merged(Pending):
    """A client command answered by several nodes: complete when every part has answered, then
    ``merge`` makes the client's reply from the parts' replies (in part order)."""

    __slots__ = ("parts", "left", "merge")

    def __init__(self, count: int, merge: Callable[[list[bytes]], bytes]) -> None:
        super().__init__()
        self.parts: list[bytes] = [b""] * count
        self.left = count
        self.merge = merge

    def part_done(self, index: int, frame: bytes) -> None:
        self.parts[index] = frame
        self.left -= 1
        if self.left == 0:
            self.reply = self.merge(self.parts)


class Part:
    """One node's share of a ``Merged`` command."""

    __slots__ = ("owner", "index", "raw", "slot", "tries")

    def __init__(self, owner: Merged, index: int, raw: bytes, slot: int) -> None:
        self.owner = owner
        self.index = index
        self.raw = raw
        self.slot = slot
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        self.owner.part_done(self.index, frame)


class Swallow:
    """A reply the client never sees; ``check`` is told of an error (a replayed AUTH refused)."""

    __slots__ = ("check", "raw", "slot", "tries")

    def __init__(self, check: Callable[[bytes], None] | None = None) -> None:
        self.check = check
        self.raw = b""
        self.slot = -1
        self.tries = 0

    def deliver(self, frame: bytes) -> None:
        if self.check is not None and frame[:1] in (b"-", b"!"):
            self.check(frame)


Item = Pending | Part | Swallow


class Link(Protocol):
    """What the router sends a command over: its own ``NodeLink`` or its ``Lane`` on a connection
    shared with other clients (``amr.gateway.routing.pool``)."""

    @property
    def socket(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def send(self, raw: bytes, item: Item) -> None: ...
