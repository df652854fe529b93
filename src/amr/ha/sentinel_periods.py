"""Keeping Sentinel's periods short from the `amr ha` process too, so a Sentinel that restarts while
the control plane is down still fails over at full speed (amr.logic.sentinel_plan.SENTINEL_TIMINGS
says why they matter; Sentinel forgets them at every restart)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from amr.errors import NodeError
from amr.nodes.sentinel import SentinelAdmin, shorten_sentinel_periods

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0


async def keep_sentinel_periods(
    sentinel: SentinelAdmin, stop: asyncio.Event, interval: float = CHECK_INTERVAL
) -> None:
    """Check every ``interval`` seconds until ``stop`` is set; set the periods Sentinel lacks. A
    Sentinel that does not answer (restarting, or none yet) is logged once and asked again."""
    unreachable = ""
    try:
        while not stop.is_set():
            try:
                for name, value in await shorten_sentinel_periods(sentinel):
                    log.info("ha: set Sentinel's %s to %d ms", name, value)
                unreachable = ""
            except NodeError as e:
                if str(e) != unreachable:
                    log.warning("ha: cannot reach Sentinel to set its periods: %s", e)
                    unreachable = str(e)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
    finally:
        await sentinel.close()
