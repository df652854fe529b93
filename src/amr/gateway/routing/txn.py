"""MULTI/EXEC through the router: a transaction runs on the node of its first keyed command.

Commands before that one (MULTI itself, keyless commands) are answered here at once (``+OK``,
``+QUEUED``, so a client that waits for each reply is not stuck) and wait, to go to that node in
order with their replies swallowed. A later command for another slot is refused with CROSSSLOT and the
transaction is marked failed, so EXEC is answered with EXECABORT and the node discards it, as the
engine does with a command refused while queuing. A WATCH before MULTI pins the transaction to the
watched slot's node from the start. Each command comes with its route decision
(``amr.logic.dataplane.route_decision``): its kind and the slot of its keys.
"""

from __future__ import annotations

from amr.gateway.routing.items import Link, Pending, Swallow
from amr.gateway.routing.link_table import LinkTable
from amr.gateway.routing.replies import ReplyQueue
from amr.logic.dataplane.command_routing import BLOCKED, CROSSSLOT_REPLY, DISCARD, EXEC, SUBSCRIBE

DISCARD_RAW = b"*1\r\n$7\r\nDISCARD\r\n"
EXECABORT_REPLY = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
# Queued commands are never redirected: a MOVED inside a transaction is the transaction's to fail.
NO_RETRY = 1 << 30


class Transaction:
    """One client's open MULTI: where it runs and what waits for that decision."""

    __slots__ = ("table", "replies", "link", "slot", "waiting", "failed")

    def __init__(self, table: LinkTable, replies: ReplyQueue, multi_raw: bytes) -> None:
        self.table = table
        self.replies = replies
        self.link: Link | None = table.watch_link
        self.slot = table.watch_slot if table.watch_link is not None else -1
        self.waiting: list[bytes] = []
        self.failed = False
        self._queue(multi_raw, b"+OK\r\n")

    def _queue(self, raw: bytes, early_reply: bytes = b"+QUEUED\r\n") -> None:
        if self.link is not None:
            p = Pending(raw)
            p.tries = NO_RETRY
            self.replies.fifo.append(p)
            self.link.send(raw, p)
        else:
            self.replies.fifo.append(Pending(reply=early_reply))
            self.waiting.append(raw)

    def _pin(self, link: Link) -> None:
        self.link = link
        waiting, self.waiting = self.waiting, []
        for raw in waiting:
            link.send(raw, Swallow())

    def command(self, kind: int, slot: int, socket: str, raw: bytes) -> bool:
        """A command while the transaction is open, by its route decision (kind, the slot of its
        keys and that slot's node); True when it ended the transaction (EXEC, DISCARD)."""
        if kind == EXEC or kind == DISCARD:
            self._end(kind, raw)
            return True
        replies = self.replies
        if kind == BLOCKED:
            replies.fifo.append(Pending(reply=b"-ERR unknown command 'CLUSTER'\r\n"))
            self.failed = True
            return False
        if kind == SUBSCRIBE:
            # Queued like a keyless command: an SSUBSCRIBE's channel does not pin the transaction.
            slot = -1
        if slot == -2 or (slot >= 0 and self.slot >= 0 and slot != self.slot):
            replies.fifo.append(Pending(reply=CROSSSLOT_REPLY))
            self.failed = True
            return False
        if slot >= 0 and self.slot < 0:
            self.slot = slot
            if self.link is None:
                self._pin(self.table.to(socket))
        self._queue(raw)
        return False

    def _end(self, kind: int, raw: bytes) -> None:
        table = self.table
        table.watch_link, table.watch_slot = None, -1
        if self.link is None:
            self._pin(table.any_link())
        assert self.link is not None
        if self.failed:
            self.link.send(DISCARD_RAW, Swallow())
            self.replies.fifo.append(Pending(reply=EXECABORT_REPLY if kind == EXEC else b"+OK\r\n"))
            return
        self._queue(raw)
