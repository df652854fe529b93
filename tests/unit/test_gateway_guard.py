"""Brute-force guard, descriptor-exhaustion logging and compiled firewall matching for the gateway."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from amr.logic.firewall import source_allowed
from amr.logic.gateway_access import SourceMatcher
from amr.logic.gateway_bruteforce import AuthFailureGuard
from amr.logic.gateway_descriptors import DescriptorPressure


def test_blocks_after_limit_within_window_then_cooldown() -> None:
    g = AuthFailureGuard(limit=3, window=10, cooldown=30)
    assert not g.record_failure("10.0.0.1", 0)
    assert not g.record_failure("10.0.0.1", 1)
    assert not g.is_blocked("10.0.0.1", 1)
    assert g.record_failure("10.0.0.1", 2)
    assert g.is_blocked("10.0.0.1", 3)
    assert g.is_blocked("::ffff:10.0.0.1", 3)  # the same client over a dual-stack socket
    assert not g.is_blocked("10.0.0.2", 3)
    assert g.is_blocked("10.0.0.1", 31.9)
    assert not g.is_blocked("10.0.0.1", 32)


def test_failures_outside_window_do_not_add_up() -> None:
    g = AuthFailureGuard(limit=3, window=10, cooldown=30)
    for t in (0, 11, 22, 33):
        assert not g.record_failure("s", t)
    assert not g.is_blocked("s", 34)


def test_disabled() -> None:
    g = AuthFailureGuard(limit=0, window=10, cooldown=30)
    assert not any(g.record_failure("s", i) for i in range(100))


def test_memory_is_bounded_and_evicts_oldest() -> None:
    g = AuthFailureGuard(limit=2, window=100, cooldown=100, max_sources=50)
    for i in range(10_000):
        g.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 1)
    assert len(g) <= 100
    for i in range(200):
        g.record_failure(f"b{i}", 2)
        g.record_failure(f"b{i}", 3)
    assert len(g) <= 100
    assert g.is_blocked("b199", 4) and not g.is_blocked("b0", 4)


def test_matcher_none_and_empty() -> None:
    assert SourceMatcher(None).allows("1.2.3.4")
    assert not SourceMatcher(()).allows("1.2.3.4")
    assert not SourceMatcher((("1.2.3.4", "1.2.3.4"),)).allows("not an address")


v4 = st.integers(min_value=0, max_value=2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
v6 = st.integers(min_value=0, max_value=2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
addr = st.one_of(v4, v6, st.sampled_from(["127.0.0.5", "::ffff:127.0.0.5", "::1", "fe80::1%lo"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(addr, addr), max_size=4), st.lists(addr, min_size=1, max_size=5))
def test_matcher_agrees_with_source_allowed(ranges: list[tuple[str, str]], sources: list[str]) -> None:
    # Rules are validated to one family per range (validate_rule_range); mixed ones never reach here.
    ranges = [
        (a, b)
        for a, b in ranges
        if "%" not in a + b and ipaddress.ip_address(a).version == ipaddress.ip_address(b).version
    ]
    allowed = tuple(ranges)
    m = SourceMatcher(allowed)
    for s in sources:
        assert m.allows(s) == source_allowed(s, allowed)


def test_descriptor_exhaustion_logged_once_per_burst() -> None:
    p = DescriptorPressure(gap=5.0)
    assert p.record(100.0)  # the first failure starts a burst
    assert not any(p.record(100.0 + 0.1 * i) for i in range(1, 50))  # retries every 100 ms
    assert not p.record(109.0)  # still within 5 s of the previous failure
    assert p.record(120.0)  # quiet for longer than the gap: a new burst
    assert p.suppressed == 50 and p.failures == 52
