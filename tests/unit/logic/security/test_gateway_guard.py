"""Brute-force guard, descriptor-exhaustion logging and compiled firewall matching for the gateway."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from amr.logic.dataplane.descriptors import DescriptorPressure
from amr.logic.security.bruteforce import AuthFailureGuard, choose_source_key, init_table, table_size
from amr.logic.security.firewall import SourceMatcher, source_allowed


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


def test_memory_is_fixed_and_blocks_outlive_a_flood_of_other_sources() -> None:
    g = AuthFailureGuard(limit=2, window=100, cooldown=100, slots=256)
    size = len(g._buf)
    for i in range(40):
        g.record_failure(f"b{i}", 2)
        g.record_failure(f"b{i}", 3)
    assert all(g.is_blocked(f"b{i}", 4) for i in range(40))
    for i in range(10_000):  # single failures from many other addresses
        g.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 5)
    assert len(g._buf) == size
    assert g.live_sources(6) == 256  # full, and no bigger
    # Unblocked sources are taken over first: the blocks stay.
    assert all(g.is_blocked(f"b{i}", 6) for i in range(40))


def test_ipv6_counts_per_64_and_ipv4_per_address() -> None:
    g = AuthFailureGuard(limit=3, window=10, cooldown=30)
    g.record_failure("2001:db8:1:2::1", 0)
    g.record_failure("2001:db8:1:2:ffff::9", 1)
    assert g.record_failure("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 2)
    assert g.is_blocked("2001:db8:1:2::77", 3)
    assert not g.is_blocked("2001:db8:1:3::1", 3)  # the next /64
    g.record_failure("10.0.0.1", 0)
    g.record_failure("10.0.0.2", 1)
    assert not g.record_failure("10.0.0.3", 2)
    assert choose_source_key("::ffff:10.0.0.1") == choose_source_key("10.0.0.1")
    assert choose_source_key("fe80::1%lo") == choose_source_key("fe80::2")


def test_values_from_another_boot_count_as_nothing() -> None:
    g = AuthFailureGuard(limit=3, window=10, cooldown=30)
    for t in (1000, 1001, 1002):
        g.record_failure("10.0.0.1", t)
    assert g.is_blocked("10.0.0.1", 1003)
    # After a reboot the monotonic clock starts again near 0: that block ends too far away to be real.
    assert not g.is_blocked("10.0.0.1", 5)
    assert not g.record_failure("10.0.0.1", 5)  # and its old window does not count either


def test_two_guards_over_one_table_share_counts_and_blocks() -> None:
    buf = bytearray(table_size(128))
    init_table(buf, b"k" * 16, 128)
    a = AuthFailureGuard(3, 10, 30, buf)
    b = AuthFailureGuard(3, 10, 30, buf)
    assert not a.record_failure("10.0.0.9", 0)
    assert not b.record_failure("10.0.0.9", 1)
    assert a.record_failure("10.0.0.9", 2)
    assert b.is_blocked("10.0.0.9", 3)
    # A worker that read its clock just before another wrote still sees the block.
    assert b.is_blocked("10.0.0.9", 1.999)


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


def test_blocks_after_an_earlier_one_ended_are_seen() -> None:
    # The table remembers when its latest block ends, so a check with no block running reads
    # nothing else; a new block after the last one ended must move that mark.
    g = AuthFailureGuard(limit=2, window=10, cooldown=30)
    g.record_failure("10.0.0.1", 0)
    assert g.record_failure("10.0.0.1", 1)
    assert not g.is_blocked("10.0.0.1", 31) and not g.is_blocked("10.0.0.2", 20)
    g.record_failure("10.0.0.2", 40)
    assert g.record_failure("10.0.0.2", 41)
    assert g.is_blocked("10.0.0.2", 42) and not g.is_blocked("10.0.0.1", 42)
    # A block that ends earlier (a worker whose clock read lagged) leaves the mark at the later end.
    g2 = AuthFailureGuard(limit=1, window=10, cooldown=30)
    g2.record_failure("10.0.0.3", 1)
    g2.record_failure("10.0.0.4", 0.5)
    assert g2.is_blocked("10.0.0.4", 30.2) and g2.is_blocked("10.0.0.3", 30.8)
    assert not g2.is_blocked("10.0.0.4", 30.6)


def test_a_burst_across_a_window_boundary_is_still_caught() -> None:
    # Windows are back to back from a source's first failure; the previous window's count still
    # weighs in, so failures that fall on both sides of a boundary are not forgotten (limit 3,
    # window 10).
    g = AuthFailureGuard(limit=3, window=10, cooldown=30)
    assert not g.record_failure("10.0.0.1", 0)
    assert not g.record_failure("10.0.0.1", 9.9)
    assert not g.record_failure("10.0.0.1", 10.1)  # 1 + 2 x 0.99 (a sliding window holds 2)
    assert g.record_failure("10.0.0.1", 10.2)  # 2 + 2 x 0.98: a fixed window would count 2
    # Spread out, the same counts do not block: the previous window weighs less as time goes on.
    g.record_failure("10.0.0.2", 20.0)
    g.record_failure("10.0.0.2", 20.5)
    assert not g.record_failure("10.0.0.2", 39.0)  # 1 + 2 x 0.1
    assert not g.record_failure("10.0.0.2", 49.0)  # 1 + 1 x 0.1
    # A burst from a quiet source is exact wherever the clock is.
    for t in (7.0, 1234.5):
        g2 = AuthFailureGuard(limit=3, window=10, cooldown=30)
        assert [g2.record_failure("10.0.0.3", t + d) for d in (0, 0.01, 0.02)] == [False, False, True]
