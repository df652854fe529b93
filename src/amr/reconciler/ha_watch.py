"""Publishing the HA watch file (``AMR_HOME/ha/watch.json``) that the `amr ha` coordinator follows,
and the metric collector's (``AMR_HOME/monitor/watch.json``, every database) that `amr monitord` follows.

The reconciler calls ``HaWatchPublisher.publish`` wherever it publishes the gateway's routes; the file is
written (atomically, mode 0600 in a 0700 directory) only when the watch changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from amr.errors import AmrError
from amr.home import write_private
from amr.logic.ha.watch import WATCH_FILE_NAME, plan_ha_watch, plan_monitor_watch, render_ha_watch
from amr.model.ha import HaWatch
from amr.model.resources import Cluster, Database
from amr.settings import Settings

log = logging.getLogger(__name__)


def ha_watch_file(settings: Settings) -> Path:
    """Where the watch file lives."""
    return settings.ha_dir / WATCH_FILE_NAME


def ha_watch_writer(settings: Settings) -> Callable[[HaWatch], None]:
    """A function writing the watch to ``AMR_HOME/ha/watch.json``; it skips the write when the file
    already holds the same watch (as after a restart of the control plane)."""
    return watch_writer(ha_watch_file(settings))


def monitor_watch_writer(settings: Settings) -> Callable[[HaWatch], None]:
    """A function writing the metric collector's watch to ``AMR_HOME/monitor/watch.json``."""
    return watch_writer(settings.monitor_dir / WATCH_FILE_NAME)


def watch_writer(path: Path) -> Callable[[HaWatch], None]:
    """A function writing a watch to ``path`` (0600 in a 0700 directory), unless it holds it already."""

    def write(watch: HaWatch) -> None:
        text = render_ha_watch(watch)
        try:
            if path.read_text() == text:
                return
        except (OSError, UnicodeDecodeError):
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, text)
        os.chmod(path.parent, 0o700)

    return write


class HaWatchPublisher:
    """Plans the watch from the store's records and hands it to ``write`` when it changed (the
    metric collector's, with ``every_database``)."""

    def __init__(self, write: Callable[[HaWatch], None] | None, every_database: bool = False) -> None:
        self._write = write
        self._every_database = every_database
        self._last: HaWatch | None = None

    def publish(
        self,
        databases: list[Database],
        clusters: dict[str, Cluster],
        run_dir: str,
        paused: frozenset[str] = frozenset(),
    ) -> None:
        if self._write is None:
            return
        if self._every_database:
            watch = plan_monitor_watch(databases, clusters, run_dir)
        else:
            watch = plan_ha_watch(databases, clusters, run_dir, paused)
        if watch == self._last:
            return
        try:
            self._write(watch)
        except (OSError, AmrError) as e:
            # The next publish retries; the coordinator keeps the watch it has meanwhile.
            log.warning("cannot write the %s watch file: %s", "monitor" if self._every_database else "HA", e)
            return
        self._last = watch
