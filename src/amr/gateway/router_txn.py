"""MULTI/EXEC through the router: a transaction runs on the node of its first keyed command.

Commands before that one (MULTI itself, keyless commands) are answered here at once (``+OK``,
``+QUEUED``, so a client that waits for each reply is not stuck) and wait, to go to that node in
order with their replies swallowed. A later command for another slot is refused with CROSSSLOT and the
transaction is marked failed, so EXEC is answered with EXECABORT and the node discards it, as the
engine does with a command refused while queuing. A WATCH before MULTI pins the transaction to the
watched slot's node from the start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amr.gateway.router_links import Link, Pending, Swallow
from amr.logic.command_routing import (
    BLOCKED,
    CROSSSLOT_REPLY,
    DISCARD,
    EXEC,
    KEYED,
    MGET,
    MSET,
    SPLIT_SUM,
    WATCH,
    choose_keys,
    choose_kind,
    choose_slot,
)

if TYPE_CHECKING:
    from amr.gateway.router import Router

DISCARD_RAW = b"*1\r\n$7\r\nDISCARD\r\n"
EXECABORT_REPLY = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
# Queued commands are never redirected: a MOVED inside a transaction is the transaction's to fail.
NO_RETRY = 1 << 30


class Transaction:
    """One client's open MULTI: where it runs and what waits for that decision."""

    __slots__ = ("router", "link", "slot", "waiting", "failed")

    def __init__(self, router: Router, multi_raw: bytes) -> None:
        self.router = router
        self.link: Link | None = router.watch_link
        self.slot = router.watch_slot if router.watch_link is not None else -1
        self.waiting: list[bytes] = []
        self.failed = False
        self._queue(multi_raw, b"+OK\r\n")

    def _queue(self, raw: bytes, early_reply: bytes = b"+QUEUED\r\n") -> None:
        if self.link is not None:
            p = Pending(raw)
            p.tries = NO_RETRY
            self.router.fifo.append(p)
            self.link.send(raw, p)
        else:
            self.router.fifo.append(Pending(reply=early_reply))
            self.waiting.append(raw)

    def _pin(self, link: Link) -> None:
        self.link = link
        waiting, self.waiting = self.waiting, []
        for raw in waiting:
            link.send(raw, Swallow())

    def command(self, name: bytes, args: list[bytes], raw: bytes) -> None:
        """A command while the transaction is open."""
        router = self.router
        kind = choose_kind(name, args)
        if kind == EXEC or kind == DISCARD:
            self._end(kind, raw)
            return
        if kind == BLOCKED:
            router.fifo.append(Pending(reply=b"-ERR unknown command 'CLUSTER'\r\n"))
            self.failed = True
            return
        if kind == KEYED or kind == WATCH:
            keys = choose_keys(name, args, router.topology.commands) if kind == KEYED else args[1:]
        elif kind == MSET:
            keys = args[1::2]
        elif kind in (SPLIT_SUM, MGET):
            keys = args[1:]
        else:
            keys = []
        slot = choose_slot(keys) if keys else -1
        if slot == -2 or (slot >= 0 and self.slot >= 0 and slot != self.slot):
            router.fifo.append(Pending(reply=CROSSSLOT_REPLY))
            self.failed = True
            return
        if slot >= 0 and self.slot < 0:
            self.slot = slot
            if self.link is None:
                self._pin(router.slot_link(slot))
        self._queue(raw)

    def _end(self, kind: int, raw: bytes) -> None:
        router = self.router
        router.txn = None
        router.watch_link, router.watch_slot = None, -1
        if self.link is None:
            self._pin(router.any_link())
        assert self.link is not None
        if self.failed:
            self.link.send(DISCARD_RAW, Swallow())
            router.fifo.append(Pending(reply=EXECABORT_REPLY if kind == EXEC else b"+OK\r\n"))
            return
        self._queue(raw)
