"""What a node connection may ask of each client it serves (``PoolUser``); a connection of the
client's own asks a little more of its owner (``amr.gateway.routing.node_link.LinkOwner``).

Both are Protocols, satisfied by ``amr.gateway.routing.link_table.LinkTable``: the connections
import nothing above them.
"""

from __future__ import annotations

from typing import Protocol

from amr.gateway.routing.items import Item
from amr.gateway.routing.replies import ReplyQueue
from amr.gateway.routing.session import Session


class PoolUser(Protocol):
    """One client of a shared node connection: where its replies go and who follows its redirects."""

    @property
    def session(self) -> Session: ...

    @property
    def replies(self) -> ReplyQueue: ...

    def retry(self, item: Item, frame: bytes, from_socket: str) -> bool:
        """Send ``item`` again where the error ``frame`` says; False when the error is the client's."""

    def shared_link_lost(self, reason: str) -> None:
        """A shared connection this client was waiting on closed."""
