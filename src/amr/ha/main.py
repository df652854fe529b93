"""The `amr ha` process: runs the failover coordinator until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging

from amr.ha.coordinator import Coordinator
from amr.ha.watch import WatchFile
from amr.logic.ha.watch import WATCH_FILE_NAME
from amr.logic.security.node_credentials import CredentialMasters
from amr.settings import Settings
from amr.signals import stop_on_signals

log = logging.getLogger(__name__)


async def serve(settings: Settings, ha_master: str, stop: asyncio.Event | None = None) -> None:
    """Coordinate failovers of the databases in ``AMR_HOME/ha/watch.json`` until ``stop`` is set (or
    SIGTERM/SIGINT)."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    path = settings.ha_dir / WATCH_FILE_NAME
    h = settings.ha
    coordinator = Coordinator(
        WatchFile(path), CredentialMasters(ha=ha_master).ha_for, h, settings.engine.internal_host
    )
    log.info(
        "HA coordinator started: watch file %s, down after %d ms, poll every %d ms, failover timeout %d ms",
        path, h.down_after_ms, h.poll_ms, h.failover_timeout_ms,
    )  # fmt: skip
    await coordinator.run(stop)
    log.info("HA coordinator stopped")


def run_ha(settings: Settings, ha_master: str) -> None:
    """Run the coordinator in this process until SIGTERM or SIGINT (blocking)."""
    asyncio.run(serve(settings, ha_master))
