"""Which databases have slots migrating now: the scaler marks them, the converger reads them."""

from __future__ import annotations

from amr.model.resources import Database


class MigratingDatabases:
    """The databases (by key) whose slots the scaler is migrating between shards. Meanwhile their
    shards' memory limits are relaxed (a shard may hold more than its final share until the slots are
    spread) and the scaler owns their nodes' tables (it forgets the shards it removed). Owned by the
    reconciler and handed to both, so neither the converger nor the scaler needs the other's back."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def __contains__(self, db: Database) -> bool:
        return db.key in self._keys

    def begin(self, db_key: str) -> None:
        self._keys.add(db_key)

    def end(self, db_key: str) -> None:
        self._keys.discard(db_key)
