"""The reconciler forgets activity log entries older than the retention, at most once an hour."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from amr.logic.arm.activity import render_event_time
from amr.model.activity import ActivityQuery
from amr.reconciler.ledger import Ledger
from amr.store.repository import SqlStore
from amr.testing.activity import sample_event
from amr.testing.clock import FakeClock


def test_entries_older_than_the_retention_are_pruned_hourly(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqlStore.open_file(tmp_path / "amr.db")
    try:
        ledger = Ledger(store, clock.now, lambda: None)
        for days_ago in (91, 89, 0):
            stamp = render_event_time(clock.now() - timedelta(days=days_ago))
            store.add_activity(sample_event(event_data_id=f"d{days_ago}", event_timestamp=stamp))
        everything = ActivityQuery("2000-01-01T00:00:00.000000Z", "2100-01-01T00:00:00.000000Z")

        def left() -> list[str]:
            return [e.event_data_id for _, e in store.list_activity(everything)]

        assert ledger.prune_activity(timedelta(days=90)) == 1
        assert left() == ["d0", "d89"]
        clock.advance(1800)  # half an hour later a pass does nothing, even with no retention at all
        assert ledger.prune_activity(timedelta(0)) == 0
        clock.advance(2 * 86400)  # d89 is 91 days old now
        assert ledger.prune_activity(timedelta(days=90)) == 1
        assert left() == ["d0"]
    finally:
        store.close()
