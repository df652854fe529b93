"""The gateway-wide budget for EnterpriseCluster commands the router must hold whole.

A big command whose destination is known from its head is streamed to its node
(``amr.logic.dataplane.request_stream``); one that must be complete before it can be routed is held in the
gateway, each byte past ``STREAM_AT`` reserved here (``plan_request_hold``). A router that does not
fit is paused, not failed: it stops reading its client and is told when others give bytes back.
"""

from __future__ import annotations

from collections.abc import Callable


class RequestBudget:
    """Bytes of incomplete commands held by one gateway process's routers beyond their own
    ``STREAM_AT``, and the routers waiting for room (each by the callback that re-plans it)."""

    __slots__ = ("total", "waiting")

    def __init__(self) -> None:
        self.total = 0
        self.waiting: dict[Callable[[], None], None] = {}  # insertion-ordered: first paused, first retried

    def take(self, n: int) -> None:
        """Reserve ``n`` bytes (negative: give them back, and let the paused routers try again)."""
        self.total += n
        if n < 0 and self.waiting:
            for retry in list(self.waiting):
                retry()

    def wait(self, retry: Callable[[], None]) -> None:
        """``retry`` is called whenever bytes are given back, until ``stop_waiting``."""
        self.waiting[retry] = None

    def stop_waiting(self, retry: Callable[[], None]) -> None:
        self.waiting.pop(retry, None)
