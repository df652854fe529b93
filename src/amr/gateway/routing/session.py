"""What the routing parts may ask of the router that owns them, and of its client connection.

The parts (reply queue, link table, node connections, transactions) hold these Protocols rather
than the ``Router`` itself, so that they import nothing above them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class ClientConnection(Protocol):
    """The client's connection as the router sees it (``amr.gateway.splice.ClientSide``)."""

    @property
    def transport(self) -> asyncio.Transport | None: ...

    def close_for(self, reason: str) -> None:
        """Close both sides (after what is already written), recording ``reason``."""

    def abort(self, reason: str) -> None:
        """Close both sides at once, dropping unsent data."""

    def answer_clients(self, args: tuple[bytes, ...], node: str, done: Callable[[bytes, bool], None]) -> None:
        """Answer CLIENT LIST/INFO/KILL/ID over the database's connections (``node`` checks the
        filter's syntax); ``done(reply, close_after)`` gets the answer later."""


class Session(Protocol):
    """One client's routing session (the ``Router``) as its parts see it."""

    @property
    def closed(self) -> bool:
        """The client is gone: nothing more is written or sent for it."""

    def fail(self, reason: str) -> None:
        """Close the client (after what is already written)."""

    def holds_client(self) -> bool:
        """Whether the router itself wants the client not read (commands waiting, a big command)."""

    def replies_written(self) -> None:
        """Every reply owed to the client has been written."""

    def link_up(self) -> None:
        """A node connection of the client's own is up."""
