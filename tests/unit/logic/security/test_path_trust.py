"""path_trust: which owners and modes let amr trust AMR_HOME, its parents and the engine binary."""

from __future__ import annotations

import stat

import pytest

from amr.logic.security.path_trust import (
    PathFacts,
    validate_ancestor,
    validate_binary,
    validate_chain,
    validate_owned,
)

ME, OTHER = 1000, 65534
DIR, FILE, LINK = stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK


def facts(mode: int, uid: int = ME, path: str = "/x") -> PathFacts:
    return PathFacts(path, uid, mode, "nobody" if uid == OTHER else "root" if uid == 0 else "me")


@pytest.mark.parametrize(
    ("mode", "uid", "mention"),
    [
        (DIR | 0o700, ME, None),
        (DIR | 0o755, ME, None),
        (FILE | 0o644, ME, None),
        (DIR | 0o700, OTHER, "owned by nobody (uid 65534), not by me"),
        (DIR | 0o700, 0, "owned by root"),  # root's home is not another user's to give away either
        (DIR | 0o770, ME, "writable by group or others (mode 0770)"),
        (DIR | 0o707, ME, "chmod go-w /x"),
        (DIR | 0o1777, ME, "writable by group or others"),  # the sticky bit does not make a home private
        (LINK | 0o777, ME, "symbolic link"),
    ],
)
def test_validate_owned(mode: int, uid: int, mention: str | None) -> None:
    problem = validate_owned(facts(mode, uid), ME, "me", "AMR_HOME")
    assert problem is None if mention is None else mention in (problem or "")


@pytest.mark.parametrize(
    ("mode", "uid", "mention"),
    [
        (DIR | 0o755, 0, None),
        (DIR | 0o700, ME, None),
        (DIR | 0o1777, 0, None),  # /tmp: others may write, but not replace root's entries
        (DIR | 0o777, 0, "writable by group or others without the sticky bit (mode 0777)"),
        (DIR | 0o775, ME, "chmod go-w /x"),
        (DIR | 0o755, OTHER, "owned by nobody (uid 65534), who could replace AMR_HOME /x/h"),
        (DIR | 0o1777, OTHER, "owned by nobody"),
        (LINK | 0o777, ME, None),  # a link's own mode means nothing; its owner does
        (LINK | 0o777, OTHER, "owned by nobody"),
    ],
)
def test_validate_ancestor(mode: int, uid: int, mention: str | None) -> None:
    problem = validate_ancestor(facts(mode, uid), ME, "AMR_HOME /x/h")
    assert problem is None if mention is None else mention in (problem or "")


@pytest.mark.parametrize(
    ("mode", "uid", "mention"),
    [
        (FILE | 0o755, 0, None),
        (FILE | 0o700, ME, None),
        (FILE | 0o755, OTHER, "owned by nobody (uid 65534), who could change what amr runs"),
        (FILE | 0o757, 0, "writable by group or others (mode 0757)"),
        (FILE | 0o775, ME, "chmod go-w /x"),
    ],
)
def test_validate_binary(mode: int, uid: int, mention: str | None) -> None:
    problem = validate_binary(facts(mode, uid), ME, "me")
    assert problem is None if mention is None else mention in (problem or "")


def test_validate_chain_reports_every_bad_parent() -> None:
    chain = [
        facts(DIR | 0o755, 0, "/"),
        facts(DIR | 0o777, 0, "/shared"),
        facts(DIR | 0o755, OTHER, "/shared/u"),
    ]
    problems = validate_chain(chain, ME, "AMR_HOME /shared/u/h")
    assert len(problems) == 2
    assert problems[0].startswith("/shared,") and problems[1].startswith("/shared/u,")
