"""Sweeping stray nodes: node directories and programs that no database record lists, which a delete
or a failed create left behind when a crash cut it short."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from amr.errors import AmrError
from amr.logic.outcomes import Outcome, warning
from amr.logic.recovery import plan_stray_nodes
from amr.model.resources import Database
from amr.nodes.backend import NodeBackend
from amr.settings import Settings
from amr.store.repository import Store

log = logging.getLogger(__name__)

# How often the reconciler looks for node directories and programs no record lists (first tick too).
STRAY_SWEEP_INTERVAL = 30.0


class StraySweeper:
    """Removes the nodes no database record lists, at most every STRAY_SWEEP_INTERVAL seconds."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: NodeBackend,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._clock = clock
        self._next_sweep = 0.0

    async def sweep_if_due(self) -> list[Outcome]:
        """Remove the stray nodes if a sweep is due; one outcome per node removed."""
        now = self._clock()
        if now < self._next_sweep:
            return []
        self._next_sweep = now + STRAY_SWEEP_INTERVAL
        try:
            # Listed before the records are read: a node is created only after its record is written.
            directories = await self._backend.list_node_directories()
            programs = [s.name for s in await self._backend.list_nodes()]
        except AmrError as e:
            log.warning("cannot look for stray nodes: %s", e)
            return []
        recorded = [n.name for db in self._store.list(Database) for n in db.nodes]
        outcomes = []
        for stray in plan_stray_nodes(recorded, directories, programs):
            directory = stray.directory or str(self._settings.nodes_dir / stray.name)
            try:
                await self._backend.remove_node(stray.name, directory)
            except AmrError as e:
                log.warning("cannot remove stray node %s: %s", stray.name, e)
                continue
            if stray.directory:
                try:
                    os.rmdir(os.path.dirname(directory))  # its database's directory, once empty
                except OSError:
                    pass
            outcomes.append(warning(f"removed stray node {stray.name}: no database lists it"))
        return outcomes
