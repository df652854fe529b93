"""Driving a Reconciler on the fakes until a condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from amr.reconciler.loop import Reconciler


async def tick_until(reconciler: Reconciler, done: Callable[[], bool], ticks: int = 40) -> None:
    """Tick until ``done``, at most ``ticks`` times, in one event loop: background work the
    reconciler starts (a slot migration task) lives across ticks and runs between them."""
    for _ in range(ticks):
        await reconciler.tick()
        if done():
            return
        await asyncio.sleep(0.01)  # lets the background task run; bounded by ``ticks``
    raise AssertionError("did not converge")
