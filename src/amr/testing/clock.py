"""A clock that only moves when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Fixed time for code that takes a clock: ``now()`` gives a datetime (Services.now, the
    reconciler), ``time()`` epoch seconds (TokenService); ``advance`` moves both."""

    def __init__(self, start: datetime = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
