"""The documentation stays navigable and complete: every relative link in README.md and docs/*.md
leads to a file (and heading) that exists, every setting is in docs/settings.md, every CLI command in
docs/cli.md, every API route in docs/api.md. The lists come from the code, so a new setting, command or
route without documentation fails here."""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.api.app import ROUTES
from amr.app.args import SERVICE_COMMANDS
from amr.cli.main import build_parser
from amr.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def _prose(page: Path) -> str:
    # Code blocks may hold brackets and parentheses that are not links.
    return _FENCE.sub("", page.read_text())


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in _HEADING.findall(_prose(page))}


def _relative_links() -> Iterator[tuple[Path, str]]:
    for page in PAGES:
        for target in _LINK.findall(_prose(page)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                yield page, target


def test_docs_exist_and_the_readme_links_every_page() -> None:
    assert len(PAGES) > 1, "docs/*.md is missing"
    readme = _prose(ROOT / "README.md")
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize(
    ("page", "target"),
    [pytest.param(page, target, id=f"{page.name}->{target}") for page, target in _relative_links()],
)
def test_relative_link_points_to_an_existing_file_and_heading(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: link to {target}: no such file"
    assert resolved.is_relative_to(ROOT), f"{page.relative_to(ROOT)}: link to {target} leaves the repository"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)}: link to {target}: no such heading"


def test_slug_matches_githubs_anchors() -> None:
    assert _slug("AMR_HOME and the engine binary") == "amr_home-and-the-engine-binary"
    assert _slug("api: the management API") == "api-the-management-api"
    assert _slug("Refused, with an error that says so") == "refused-with-an-error-that-says-so"


def _setting_names() -> list[str]:
    names = []
    for group in dataclasses.fields(Settings):
        if group.name == "home":
            continue
        assert group.default_factory is not dataclasses.MISSING, group.name
        cls = group.default_factory
        names += [f"{group.name}.{f.name}" for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return names


def test_every_setting_is_documented_in_settings_md() -> None:
    text = (DOCS / "settings.md").read_text()
    names = _setting_names()
    assert len(names) > 30
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"docs/settings.md does not document: {', '.join(missing)}"


def _cli_commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path)
    for action in subs:
        for name, child in action.choices.items():
            yield from _cli_commands(child, (*path, name))


def test_every_cli_command_is_documented_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = [*(f"amr {c}" for c in SERVICE_COMMANDS), *_cli_commands(build_parser(), ("amr",))]
    assert "amr redisenterprise database create" in commands
    missing = [c for c in commands if not re.search(re.escape(f"`{c}") + r"[` ]", text)]
    assert not missing, f"docs/cli.md does not document: {', '.join(missing)}"


def test_every_api_route_is_documented_in_api_md() -> None:
    text = (DOCS / "api.md").read_text().lower()
    # A route is named by its last fixed path segment (listKeys, firewallRules, operationsStatus ...).
    names = {next(s for s in reversed(r.pattern) if not s.startswith("{")) for r in ROUTES}
    missing = sorted(n for n in names if n.lower() not in text)
    assert not missing, f"docs/api.md does not mention: {', '.join(missing)}"


def _readme_block(heading: str) -> str:
    """The first ``sh`` code block after ``heading`` in the README."""
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index(heading) :].split("```sh\n", 1)[1].split("```", 1)[0]


def _commands(script: str) -> str:
    return "\n".join(line for line in script.strip().splitlines() if not line.startswith("set "))


def test_readme_quick_start_is_what_test_quickstart_runs() -> None:
    from tests.quickstart import QUICKSTART

    assert _commands(QUICKSTART) in _readme_block("## Quick start"), (
        "README.md's quick start differs from test_quickstart.py's"
    )


def test_readme_az_quick_start_is_what_test_az_cli_runs() -> None:
    from tests.az_quickstart import AZ_QUICKSTART

    commands = _commands(AZ_QUICKSTART)
    assert commands in _readme_block("### With the Azure CLI (az)"), (
        "README.md's az quick start differs from test_az_cli.py's"
    )
    assert commands in (DOCS / "az.md").read_text(), "docs/az.md's quick start differs from test_az_cli.py's"


def test_every_difference_the_compatibility_suite_accepts_is_documented() -> None:
    known = tomllib.loads((ROOT / "compat" / "known_differences.toml").read_text())["difference"]
    page = (DOCS / "compatibility.md").read_text()
    missing = [d["reason"] for d in known if f"| {d['reason']} |" not in page]
    assert not missing, f"docs/compatibility.md does not list: {missing}"
