"""compat/report.py: records to outcomes, counts, the comparison with the baseline and the known list
(including the checked-in compat/known_differences.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from compat.report import (
    Comparison,
    Finding,
    KnownDifference,
    Outcome,
    compare,
    count,
    parse_known,
    parse_outcomes,
    render_counts,
    render_findings,
)

KNOWN_FILE = Path(__file__).resolve().parents[3] / "compat" / "known_differences.toml"


def rec(nodeid: str, when: str, outcome: str, message: str = "", xfail: bool = False) -> dict[str, object]:
    return {"nodeid": nodeid, "when": when, "outcome": outcome, "message": message, "xfail": xfail}


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], Outcome("passed")),
        ([("setup", "passed"), ("call", "failed", "boom"), ("teardown", "passed")], Outcome("failed", "boom")),
        ([("setup", "failed", "no fixture"), ("teardown", "passed")], Outcome("error", "no fixture")),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed", "leak")], Outcome("error", "leak")),
        # The first failure says why: a teardown failing after a failed call does not replace it.
        ([("setup", "passed"), ("call", "failed", "first"), ("teardown", "failed", "second")], Outcome("failed", "first")),
        ([("setup", "skipped", "needs 8.0"), ("teardown", "passed")], Outcome("skipped", "needs 8.0")),
        ([("setup", "passed"), ("call", "skipped", "skip()"), ("teardown", "passed")], Outcome("skipped", "skip()")),
        # A script's check has only a call phase.
        ([("call", "passed")], Outcome("passed")),
    ],
)  # fmt: skip
def test_parse_outcomes_one_per_test(phases: list[tuple[str, ...]], expected: Outcome) -> None:
    assert parse_outcomes(rec("t", *p) for p in phases) == {"t": expected}


def test_an_expected_failure_is_a_skip_and_an_unexpected_pass_a_pass() -> None:
    out = parse_outcomes(
        [
            rec("xf", "setup", "passed"),
            rec("xf", "call", "skipped", "reason", xfail=True),
            rec("xp", "setup", "passed"),
            rec("xp", "call", "passed", xfail=True),
        ]
    )
    assert out == {"xf": Outcome("skipped", "reason"), "xp": Outcome("passed")}


def test_count_every_status() -> None:
    outcomes = {
        "a": Outcome("passed"),
        "b": Outcome("passed"),
        "c": Outcome("error"),
        "d": Outcome("skipped"),
    }
    assert count(outcomes) == {"passed": 2, "failed": 0, "error": 1, "skipped": 1}


CONFIG = KnownDifference("CONFIG kept", ("nocluster",), {"redis-py": ("*",)}, ("'config\\|",))
SELECT = KnownDifference("db 0 only", ("nocluster",), {"glide": ("select_db1",)})


@pytest.mark.parametrize(
    ("client", "target", "test", "message", "covered"),
    [
        ("redis-py", "nocluster", "tests/x.py::test_a", "NOPERM ... run the 'config|set' command", True),
        ("redis-py", "nocluster", "tests/x.py::test_a", "AssertionError: 1 != 2", False),  # other error
        (
            "redis-py",
            "osscluster",
            "tests/x.py::test_a",
            "run the 'config|set' command",
            False,
        ),  # other target
        ("glide", "nocluster", "config", "run the 'config|get' command", False),  # other client
    ],
)
def test_a_known_difference_covers_its_client_target_tests_and_errors(
    client: str, target: str, test: str, message: str, covered: bool
) -> None:
    assert CONFIG.covers(client, target, test, message) is covered


def test_a_known_difference_without_errors_covers_its_tests_whatever_the_message() -> None:
    assert SELECT.covers("glide", "nocluster", "select_db1", "anything")
    assert not SELECT.covers("glide", "nocluster", "select_db2", "anything")


def test_compare_finds_endpoint_only_failures_and_explains_the_known_ones() -> None:
    target = {
        "t_config": Outcome("failed", "run the 'config|set' command"),
        "t_bug": Outcome("error", "timeout"),
        "t_both": Outcome("failed", "x"),  # fails on the baseline too: not the endpoint's
        "t_skip_base": Outcome("failed", "y"),  # skipped on the baseline: not comparable
        "t_new": Outcome("failed", "z"),  # not run on the baseline
        "t_ok": Outcome("passed"),
    }
    base = {
        "t_config": Outcome("passed"),
        "t_bug": Outcome("passed"),
        "t_both": Outcome("failed", "x"),
        "t_skip_base": Outcome("skipped"),
        "t_ok": Outcome("passed"),
    }
    c = compare("redis-py", "nocluster", "valkey", target, base, [CONFIG])
    assert [(f.test, f.known) for f in c.findings] == [("t_bug", None), ("t_config", CONFIG)]
    assert [f.test for f in c.unexplained] == ["t_bug"]


def test_parse_known_reads_groups_with_tests_per_client() -> None:
    text = """
[[difference]]
reason = "CONFIG kept"
targets = ["nocluster"]
errors = ["'config\\\\|"]
redis-py = ["*"]
glide = ["config_get"]
"""
    assert parse_known(text) == [
        KnownDifference(
            "CONFIG kept", ("nocluster",), {"redis-py": ("*",), "glide": ("config_get",)}, ("'config\\|",)
        )
    ]


def test_the_checked_in_known_list_parses_with_a_one_line_reason_per_group() -> None:
    groups = parse_known(KNOWN_FILE.read_text())
    assert groups
    for g in groups:
        assert g.reason and "\n" not in g.reason
        assert set(g.targets) <= {"nocluster", "osscluster", "enterprisecluster"}
        assert set(g.tests) <= {"redis-py", "glide", "ioredis"}


def test_render_counts_and_findings() -> None:
    table = render_counts([("glide", "nocluster", {"passed": 20, "failed": 2, "error": 0, "skipped": 1})])
    assert table.splitlines()[-1] == "| glide | nocluster | 20 | 2 | 0 | 1 |"
    c = Comparison("glide", "nocluster", "valkey")
    c.findings = [
        Finding("glide", "nocluster", "quit", Outcome("failed", "Error:\n timed out"), None),
        Finding("glide", "nocluster", "select_db1", Outcome("failed", "ERR"), SELECT),
    ]
    text = render_findings([c])
    assert "1 not known, 1 known" in text
    assert "- NOT KNOWN quit [failed]: Error: timed out" in text
    assert "- known (1): db 0 only" in text
