"""Running out of file descriptors in the gateway: when to say so in the log."""

from __future__ import annotations

# Accepts are paused this long after EMFILE/ENFILE before the listener tries again.
ACCEPT_PAUSE = 0.1
# Failures closer together than this belong to one burst (logged once).
BURST_GAP = 5.0


class DescriptorPressure:
    """Decides which descriptor-exhaustion failures are worth a log line: the first of each burst.

    A burst is a run of failures (failed accepts or node connects) each less than ``gap`` seconds
    after the previous one. ``record`` is called on every failure with a monotonic ``now`` and returns
    True for the first failure of a burst; ``suppressed`` then says how many failures the previous
    burst had after its first (what its one log line did not show).
    """

    __slots__ = ("gap", "failures", "suppressed", "_last", "_in_burst")

    def __init__(self, gap: float = BURST_GAP) -> None:
        self.gap = gap
        self.failures = 0
        self.suppressed = 0
        self._last: float | None = None
        self._in_burst = 0

    def record(self, now: float) -> bool:
        """Count one failure at ``now``; True if it starts a new burst."""
        self.failures += 1
        last, self._last = self._last, now
        if last is not None and now - last < self.gap:
            self._in_burst += 1
            return False
        self.suppressed = self._in_burst
        self._in_burst = 0
        return True
