"""TokenThrottle: wrong client secrets per source, refusal for the cooldown, and Retry-After."""

from __future__ import annotations

from amr.logic.security.token_throttle import TokenThrottle


def test_source_is_refused_after_the_limit_within_the_window_for_the_cooldown() -> None:
    throttle = TokenThrottle(limit=3, window=60, cooldown=30)
    assert [throttle.record_failure("10.0.0.1", t) for t in (0, 1, 2)] == [False, False, True]
    assert throttle.retry_after("10.0.0.1", 2) == 30
    assert throttle.retry_after("10.0.0.1", 31.5) == 1  # rounded up: never "retry after 0"
    assert throttle.retry_after("10.0.0.2", 3) is None  # other sources are not affected
    assert throttle.retry_after("10.0.0.1", 32) is None  # the cooldown is over


def test_failures_outside_the_window_do_not_add_up() -> None:
    throttle = TokenThrottle(limit=3, window=10, cooldown=30)
    assert not throttle.record_failure("a", 0)
    assert not throttle.record_failure("a", 5)
    assert not throttle.record_failure("a", 11)  # the first one left the window
    assert throttle.retry_after("a", 11) is None
    assert throttle.record_failure("a", 12)


def test_ipv4_mapped_addresses_count_as_their_ipv4_address() -> None:
    throttle = TokenThrottle(limit=2, window=60, cooldown=30)
    throttle.record_failure("::ffff:127.0.0.1", 0)
    throttle.record_failure("127.0.0.1", 1)
    assert throttle.retry_after("::ffff:127.0.0.1", 2) == 29


def test_limit_zero_disables_throttling() -> None:
    throttle = TokenThrottle(limit=0, window=60, cooldown=30)
    assert not any(throttle.record_failure("a", t) for t in range(100))
    assert throttle.retry_after("a", 100) is None


def test_memory_is_bounded_by_max_sources() -> None:
    throttle = TokenThrottle(limit=1, window=60, cooldown=30, max_sources=10)
    for i in range(1000):
        throttle.record_failure(f"10.0.{i // 256}.{i % 256}", 0)
    assert len(throttle._until) <= 10 and len(throttle._guard) <= 20
    assert throttle.retry_after("10.0.3.231", 1) == 29  # the newest are remembered
