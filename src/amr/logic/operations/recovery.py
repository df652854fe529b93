"""Recovery after a crash: which leftover processes and node files no longer belong to anything.

``choose_orphan_processes`` decides, before a new supervisord starts, which processes of this AMR_HOME
outlived the supervisord that ran them (it was killed): they hold ports and unix sockets the new ones
need. ``plan_stray_nodes`` decides which node directories and supervisor programs have no database
record any more (a delete or a failed create that a crash interrupted).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from amr.logic.render.supervisor_conf import CORE_PROGRAMS

ENGINE_NAMES = frozenset({"valkey-server", "redis-server"})


@dataclass(frozen=True)
class ProcessFacts:
    """What /proc says of one process: its argv, its working directory and its executable."""

    pid: int
    argv: tuple[str, ...]
    cwd: str
    exe: str


def _is_core_program(argv: tuple[str, ...], home: str) -> bool:
    # supervisord runs them as ``<python> -m amr <api|gateway> --home <home>``, and the holder of the
    # nodes' private network as ``<python> -m amr.nodes.netns <home>``.
    for i in range(len(argv) - 2):
        if argv[i : i + 2] == ("-m", "amr.nodes.netns"):
            return posixpath.normpath(argv[i + 2]) == home
    for i in range(len(argv) - 4):
        if argv[i : i + 2] == ("-m", "amr") and argv[i + 2] in CORE_PROGRAMS:
            return argv[i + 3] == "--home" and posixpath.normpath(argv[i + 4]) == home
    return False


def _is_node_of(facts: ProcessFacts, nodes_dir: str) -> bool:
    # Nodes rewrite their process title, so argv says little; the executable and the working
    # directory (supervisord starts each node in AMR_HOME/nodes/<database>/<node>) do not lie.
    if posixpath.basename(facts.exe) not in ENGINE_NAMES:
        return False
    cwd = posixpath.normpath(facts.cwd)
    return posixpath.dirname(posixpath.dirname(cwd)) == nodes_dir


def _is_supervisord_of(argv: tuple[str, ...], supervisord_conf: str) -> bool:
    return any(
        a == "-c" and posixpath.normpath(b) == supervisord_conf for a, b in zip(argv, argv[1:], strict=False)
    )


def choose_orphan_processes(
    processes: Iterable[ProcessFacts],
    home: str,
    nodes_dir: str,
    supervisord_conf: str,
    sentinel_dir: str = "",
) -> list[int]:
    """Decide which processes are leftovers of this AMR_HOME's previous run, to stop before a new
    supervisord starts: its api and gateway programs, valkey/redis nodes running in one of its node
    directories, a Sentinel an older amr ran (the engine running in ``sentinel_dir``: left running,
    it would fail over databases alongside `amr ha`), and a supervisord of its ``supervisord_conf`` that no
    longer answers (hung). Only call this when no supervisord answers for the home. Other homes'
    processes are never chosen."""
    home = posixpath.normpath(home)
    nodes_dir = posixpath.normpath(nodes_dir)
    conf = posixpath.normpath(supervisord_conf)
    sentinel = posixpath.normpath(sentinel_dir) if sentinel_dir else ""
    out = []
    for p in processes:
        if _is_supervisord_of(p.argv, conf) or _is_core_program(p.argv, home) or _is_node_of(p, nodes_dir):
            out.append(p.pid)
        elif sentinel and posixpath.basename(p.exe) in ENGINE_NAMES and posixpath.normpath(p.cwd) == sentinel:
            out.append(p.pid)
    return sorted(out)


@dataclass(frozen=True)
class StrayNode:
    """A node that no database record lists, with its directory if it has one."""

    name: str
    directory: str | None


def plan_stray_nodes(
    recorded: Iterable[str], directories: Mapping[str, str], programs: Iterable[str]
) -> list[StrayNode]:
    """Decide which nodes to remove: those with a node directory (``directories``: node name ->
    path) or a supervisor program (``programs``: node names) that no database record lists.

    The caller must list directories and programs *before* it reads the records: a node is only
    created after its record is written, so a node of a database being created is never taken for
    a stray."""
    known = set(recorded)
    names = (set(directories) | set(programs)) - known
    return [StrayNode(name, directories.get(name)) for name in sorted(names)]
