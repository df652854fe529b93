"""Whether amr may trust a path: AMR_HOME, what it keeps, and the engine binary it runs.

amr runs what AMR_HOME names (amr.toml's engine.server_binary) and serves the secrets it keeps, so
another local user able to change the home, or any directory above it, could make amr run their
program or use their keys. The rules are ssh's StrictModes: the home and its files are owned by the
user running amr and not writable by group or others; every directory above is owned by that user
or root and, if others may write it, has the sticky bit (as /tmp), so nobody else can rename or
replace an entry in it. The binary may also be root's (a system package).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

ROOT_UID = 0


@dataclass(frozen=True)
class PathFacts:
    """What ``lstat`` says about one path, with the owner's name for messages."""

    path: str
    uid: int
    mode: int
    owner: str


def _writable_by_others(facts: PathFacts) -> bool:
    return bool(facts.mode & (stat.S_IWGRP | stat.S_IWOTH))


def _perm(facts: PathFacts) -> str:
    return f"mode {stat.S_IMODE(facts.mode):04o}"


def validate_ancestor(facts: PathFacts, me: int, of: str) -> str | None:
    """The problem with ``facts``, a directory above ``of`` (or a symlink on the way to it), if
    another user could replace what lies below it; None when it is safe."""
    if facts.uid not in (me, ROOT_UID):
        return (
            f"{facts.path}, above {of}, is owned by {facts.owner} (uid {facts.uid}), who could replace "
            f"{of}: move it under a directory owned by you or root"
        )
    if stat.S_ISLNK(facts.mode):
        return None
    if _writable_by_others(facts) and not facts.mode & stat.S_ISVTX:
        return (
            f"{facts.path}, above {of}, is writable by group or others without the sticky bit "
            f"({_perm(facts)}), so another user could replace {of}: run 'chmod go-w {facts.path}' "
            "or move it elsewhere"
        )
    return None


def validate_owned(facts: PathFacts, me: int, me_name: str, what: str) -> str | None:
    """The problem with ``facts``, a path inside AMR_HOME (or the home itself) that only the user
    running amr may control; None when it is safe."""
    if facts.uid != me:
        return (
            f"{what} {facts.path} is owned by {facts.owner} (uid {facts.uid}), not by {me_name} who runs "
            f"amr: use a home created by {me_name} (or, after checking its content, "
            f"'chown -R {me_name} {facts.path}')"
        )
    if stat.S_ISLNK(facts.mode):
        return f"{what} {facts.path} is a symbolic link: amr uses it only as a real file or directory"
    if _writable_by_others(facts):
        return (
            f"{what} {facts.path} is writable by group or others ({_perm(facts)}): "
            f"run 'chmod go-w {facts.path}'"
        )
    return None


def validate_binary(facts: PathFacts, me: int, me_name: str) -> str | None:
    """The problem with ``facts``, the engine binary amr runs; None when only the user running amr
    or root can change it."""
    if facts.uid not in (me, ROOT_UID):
        return (
            f"engine.server_binary {facts.path} is owned by {facts.owner} (uid {facts.uid}), who could "
            f"change what amr runs: use a binary owned by {me_name} or root"
        )
    if _writable_by_others(facts):
        return (
            f"engine.server_binary {facts.path} is writable by group or others ({_perm(facts)}): "
            f"run 'chmod go-w {facts.path}'"
        )
    return None


def validate_chain(ancestors: list[PathFacts], me: int, of: str) -> list[str]:
    """The problems of every directory (and symlink) on the way to ``of``."""
    return [p for p in (validate_ancestor(a, me, of) for a in ancestors) if p]
