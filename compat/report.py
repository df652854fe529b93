"""What a compatibility run found, decided from its records (pure: no I/O).

A client run writes one JSON record per test phase (redis-py's suite through compat/redispy_plugin.py,
the glide and ioredis scripts for each of their checks). Here the records become one outcome per test,
the outcomes counts per client and target, and the comparison with the target's baseline (the engine
itself): an *endpoint-only failure* fails through amr and passes on the baseline. Each is either a
known, documented difference (compat/known_differences.toml, matched by test id and error message)
or a finding that fails the run.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

STATUSES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class Outcome:
    """One test's result: a status of STATUSES and, unless it passed, the error it reported."""

    status: str
    message: str = ""


@dataclass(frozen=True)
class KnownDifference:
    """A group of endpoint-only failures with one reason. A failure is in the group when its client
    and target are listed, its test id matches one of ``tests`` (fnmatch) and, when ``errors`` is
    not empty, its message matches one of ``errors`` (regular expressions, searched)."""

    reason: str
    targets: tuple[str, ...]
    tests: Mapping[str, tuple[str, ...]]
    errors: tuple[str, ...] = ()

    def covers(self, client: str, target: str, test: str, message: str) -> bool:
        if target not in self.targets or not any(
            fnmatch.fnmatchcase(test, p) for p in self.tests.get(client, ())
        ):
            return False
        return not self.errors or any(re.search(e, message) for e in self.errors)


@dataclass(frozen=True)
class Finding:
    """An endpoint-only failure and the known difference that explains it (None: not explained)."""

    client: str
    target: str
    test: str
    outcome: Outcome
    known: KnownDifference | None


@dataclass
class Comparison:
    """One client on one target, next to the same client on the target's baseline."""

    client: str
    target: str
    baseline: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Finding]:
        return [f for f in self.findings if f.known is None]


def parse_outcomes(records: Iterable[Mapping[str, object]]) -> dict[str, Outcome]:
    """One outcome per test from its phases' records (setup, call, teardown, in the order run).

    A failed setup or teardown is an error; a failed call a failure; a skip in any phase, or an
    expected failure, a skip; an unexpected pass a pass. The first failing phase's message is kept.
    """
    out: dict[str, Outcome] = {}
    for r in records:
        test, when, result = str(r["nodeid"]), str(r["when"]), str(r["outcome"])
        message, xfail = str(r.get("message") or ""), bool(r.get("xfail"))
        before = out.get(test)
        if before is not None and before.status in ("failed", "error"):
            continue  # the first failure says why
        if result == "failed" and not xfail:
            out[test] = Outcome("failed" if when == "call" else "error", message)
        elif result == "skipped" or (xfail and result == "failed"):
            out[test] = Outcome("skipped", message)
        elif when == "call" or before is None:
            out[test] = Outcome("passed")
    return out


def count(outcomes: Mapping[str, Outcome]) -> dict[str, int]:
    """How many tests ended in each of STATUSES."""
    counts = dict.fromkeys(STATUSES, 0)
    for o in outcomes.values():
        counts[o.status] += 1
    return counts


def parse_known(text: str) -> list[KnownDifference]:
    """The known differences file (TOML): ``[[difference]]`` tables with ``reason``, ``targets``,
    optional ``errors`` and a list of test patterns per client (``redis-py``, ``glide`` ...)."""
    groups = []
    for d in tomllib.loads(text).get("difference", []):
        tests = {k: tuple(v) for k, v in d.items() if k not in ("reason", "targets", "errors")}
        groups.append(
            KnownDifference(
                reason=str(d["reason"]),
                targets=tuple(d["targets"]),
                tests=tests,
                errors=tuple(d.get("errors", ())),
            )
        )
    return groups


def compare(
    client: str,
    target: str,
    baseline: str,
    outcomes: Mapping[str, Outcome],
    baseline_outcomes: Mapping[str, Outcome],
    known: Sequence[KnownDifference],
) -> Comparison:
    """The endpoint-only failures of ``client`` on ``target``: failed or errored there, passed on
    ``baseline``; each with the first known difference that covers it."""
    result = Comparison(client, target, baseline)
    for test in sorted(outcomes):
        o = outcomes[test]
        base = baseline_outcomes.get(test)
        if o.status in ("failed", "error") and base is not None and base.status == "passed":
            group = next((k for k in known if k.covers(client, target, test, o.message)), None)
            result.findings.append(Finding(client, target, test, o, group))
    return result


def render_counts(rows: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """A markdown table of counts: one row per (client, target)."""
    lines = ["| client | target | " + " | ".join(STATUSES) + " |", "|---|---|" + "---:|" * len(STATUSES)]
    for client, target, counts in rows:
        lines.append(f"| {client} | {target} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |")
    return "\n".join(lines)


def _one_line(message: str, width: int = 160) -> str:
    text = " ".join(message.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_findings(comparisons: Sequence[Comparison]) -> str:
    """Per client and target: the unexplained endpoint-only failures with their errors, then the
    known ones counted by reason."""
    out: list[str] = []
    for c in comparisons:
        known: dict[str, int] = {}
        for f in c.findings:
            if f.known is not None:
                known[f.known.reason] = known.get(f.known.reason, 0) + 1
        out.append(
            f"\n### {c.client} on {c.target} (baseline {c.baseline}): "
            f"{len(c.unexplained)} not known, {len(c.findings) - len(c.unexplained)} known"
        )
        for f in c.unexplained:
            out.append(f"- NOT KNOWN {f.test} [{f.outcome.status}]: {_one_line(f.outcome.message)}")
        for reason, n in sorted(known.items()):
            out.append(f"- known ({n}): {reason}")
    return "\n".join(out)
