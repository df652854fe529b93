"""amr's modules import each other without a circle, counting every import the source holds (inside
functions and under ``TYPE_CHECKING`` too), and none of them is over 400 lines.

import-linter's contracts (pyproject.toml) keep the layers; this reads the source itself, so that a
circle between modules no contract names cannot come back either."""

from __future__ import annotations

import ast
from pathlib import Path

import amr

ROOT = Path(amr.__file__).parent
PACKAGE = "amr"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The amr modules ``name`` imports (a package's own ``__init__`` is not counted as a
    dependency of its submodules' importers: it imports nothing here)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in modules and t != name and t != PACKAGE}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, if there is any."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle_in_amr() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "amr.gateway.routing.router" in graph["amr.gateway.splice"]  # the graph is read
    assert "amr.logic.operations.node_state" in graph["amr.logic.operations.plan"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_amr_import_names_a_module_that_exists() -> None:
    """mypy does not see a missing amr module (missing imports are ignored for third parties), and a
    process only fails when it imports it: a module moved or deleted under an importer fails here."""
    modules = _modules()
    missing = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("amr.")
            ):
                target = node.module or ""
                if target not in modules:
                    missing.append(f"{name} imports {target}")
            elif isinstance(node, ast.Import):
                missing += [
                    f"{name} imports {a.name}"
                    for a in node.names
                    if a.name.startswith("amr.") and a.name not in modules
                ]
    assert missing == []
