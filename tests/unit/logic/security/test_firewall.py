"""Who may connect: rule validation and source matching."""

from __future__ import annotations

import pytest

from amr.errors import InvalidParameter
from amr.logic.security.firewall import plan_allowed_sources, source_allowed, validate_rule_range


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        ("1.2.3", "1.2.3.4", ["startIP", "IPv4 or IPv6"]),
        ("1.2.3.4", "banana", ["endIP"]),
        ("1.2.3.9", "1.2.3.4", ["must not be greater"]),
        ("1.2.3.4", "2001:db8::1", ["both be IPv4 or both be IPv6"]),
    ],
)
def test_bad_rule_ranges_say_what_to_fix(start: str, end: str, words: list[str]) -> None:
    with pytest.raises(InvalidParameter) as e:
        validate_rule_range(start, end)
    for word in words:
        assert word in e.value.message


def test_rule_ranges_are_normalised() -> None:
    assert validate_rule_range(" 10.0.0.1", "10.0.0.1") == ("10.0.0.1", "10.0.0.1")
    assert validate_rule_range("2001:DB8::1", "2001:db8:0::ff") == ("2001:db8::1", "2001:db8::ff")


def test_no_rules_lets_everyone_in_and_disabled_access_lets_nobody_in() -> None:
    assert plan_allowed_sources(True, [], []) is None
    assert plan_allowed_sources(False, [], []) == ()
    assert plan_allowed_sources(False, [("1.1.1.1", "1.1.1.1")], ["10.0.0.0/8"]) == (
        ("10.0.0.0", "10.255.255.255"),
    )


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("203.0.113.5", True),
        ("203.0.113.10", False),
        ("::ffff:203.0.113.5", True),  # an IPv4 client on a dual-stack socket
        ("2001:db8::7", True),
        ("2001:db8::1:0", False),
        ("not-an-address", False),
    ],
)
def test_source_matching(source: str, allowed: bool) -> None:
    ranges = (("203.0.113.1", "203.0.113.9"), ("2001:db8::1", "2001:db8::ff"))
    assert source_allowed(source, ranges) is allowed


def test_everyone_when_unrestricted() -> None:
    assert source_allowed("198.51.100.1", None)
