"""Throttling of the management API's token endpoint: the gateway's brute-force guard, applied to
client secrets, with the wait a refused source is told (Retry-After)."""

from __future__ import annotations

import math
from collections import OrderedDict

from amr.logic.security.bruteforce import DEFAULT_SLOTS, AuthFailureGuard, choose_source_key


class TokenThrottle:
    """Decides whether a source may try a client secret now, and for how long it must wait if not.

    Wraps ``AuthFailureGuard`` (same counting: ``limit`` failures within ``window`` seconds block the
    source for ``cooldown`` seconds; a limit of 0 disables it; sources are IPv4 addresses and IPv6
    /64s) and remembers when each block ends, so the refusal can say when to retry. Time is passed
    in (``now``, any monotonic clock); memory is bounded by ``max_sources`` as in the guard (its
    table's slots).
    """

    def __init__(self, limit: int, window: float, cooldown: float, max_sources: int = DEFAULT_SLOTS) -> None:
        self._guard = AuthFailureGuard(limit, window, cooldown, slots=max_sources)
        self._until: OrderedDict[bytes, float] = OrderedDict()
        self._max_sources = max(max_sources, 1)

    def retry_after(self, source: str, now: float) -> int | None:
        """Whole seconds ``source`` must wait before trying a secret again; None if it may try now."""
        key = choose_source_key(source)
        if not self._guard.is_blocked(source, now):
            self._until.pop(key, None)
            return None
        until = self._until.get(key, now + self._guard.cooldown)
        return max(1, math.ceil(until - now))

    def record_failure(self, source: str, now: float) -> bool:
        """Count a wrong client secret from ``source``; True if the source is refused from now on."""
        key = choose_source_key(source)
        if not self._guard.record_failure(source, now):
            return False
        self._until.pop(key, None)
        self._until[key] = now + self._guard.cooldown
        while len(self._until) > self._max_sources:
            self._until.popitem(last=False)
        return True
