"""Following the HA watch file the control plane writes (``AMR_HOME/ha/watch.json``).

A cheap ``os.stat`` per tick (amr.home.FollowedFile); the file is read and parsed again only when it
changed. A missing or
unreadable file means nothing to watch (the coordinator then promotes nothing), logged once per change.
"""

from __future__ import annotations

import logging
from pathlib import Path

from amr.errors import ConfigError
from amr.home import FollowedFile
from amr.logic.ha_watch import parse_ha_watch
from amr.model.ha import HaWatch

log = logging.getLogger(__name__)


class WatchFile:
    """The watch as the file says now."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = FollowedFile(path)
        self._watch: HaWatch | None = None
        self._problem = ""

    def read(self) -> HaWatch | None:
        """The current watch; None when the file is missing or cannot be read or parsed."""
        look = self._file.look()
        if not look.changed:
            if look.error:
                self._fail(f"cannot read the HA watch file {self.path}: {look.error}; watching nothing")
                self._file.forget()
            return self._watch
        if look.error:
            self._fail(f"cannot read the HA watch file {self.path}: {look.error}; watching nothing")
            return None
        if look.text is None:
            self._fail(f"no HA watch file at {self.path} (the control plane writes it); watching nothing")
            return None
        try:
            watch = parse_ha_watch(look.text)
        except ConfigError as e:
            self._fail(f"cannot read the HA watch file {self.path}: {e}; watching nothing")
            return None
        self._watch, self._problem = watch, ""
        log.info(
            "HA watch: %d database(s), %d node(s)",
            len(watch.databases),
            sum(len(s.nodes) for db in watch.databases for s in db.shards),
        )
        return watch

    def _fail(self, problem: str) -> None:
        self._watch = None
        if problem != self._problem:
            log.warning("%s", problem)
            self._problem = problem
