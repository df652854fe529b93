"""Per-source brute-force protection for the gateway's authentication phase."""

from __future__ import annotations

from collections import OrderedDict, deque

DEFAULT_MAX_SOURCES = 10_000


def normalize_source(source: str) -> str:
    """One key per client address: an IPv4-mapped IPv6 address counts as its IPv4 address."""
    if source.startswith("::ffff:") and "." in source:
        return source[7:]
    return source


class AuthFailureGuard:
    """Decides which sources are refused after repeated authentication failures.

    A source with ``limit`` failures within ``window`` seconds is blocked for ``cooldown`` seconds.
    Time is passed in (``now``, any monotonic clock). Memory is bounded: at most ``max_sources``
    sources with recent failures and ``max_sources`` blocked sources are remembered; beyond that the
    least recently touched are forgotten first. A ``limit`` of 0 or less disables the protection.
    """

    def __init__(
        self, limit: int, window: float, cooldown: float, max_sources: int = DEFAULT_MAX_SOURCES
    ) -> None:
        self.limit = limit
        self.window = window
        self.cooldown = cooldown
        self.max_sources = max(max_sources, 1)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures) + len(self._blocked)

    def is_blocked(self, source: str, now: float) -> bool:
        """Whether connections from ``source`` are refused at ``now``."""
        if not self._blocked:
            return False
        key = normalize_source(source)
        until = self._blocked.get(key)
        if until is None:
            return False
        if now >= until:
            del self._blocked[key]
            return False
        return True

    def record_failure(self, source: str, now: float) -> bool:
        """Count a failed authentication; return True if it makes the source blocked."""
        if self.limit <= 0:
            return False
        key = normalize_source(source)
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limit)
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        if len(times) >= self.limit:
            self._blocked.pop(key, None)
            self._blocked[key] = now + self.cooldown
            while len(self._blocked) > self.max_sources:
                self._blocked.popitem(last=False)
            return True
        self._failures[key] = times
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)
        return False
