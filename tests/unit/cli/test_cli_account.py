"""``amr account`` against the real API app, and the CLI's failures before or around the API: not
set up, API unreachable, a refused secret, an unexpected error, argument errors, help."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
import pytest

from amr.cli.context import Context
from amr.cli.main import main
from amr.settings import load_settings
from amr.testing.api import InProcessApi

from .conftest import ENDPOINT, PRINCIPAL, SUB, Runner


def test_account_show_and_token(run: Runner, app: InProcessApi) -> None:
    r = run("account", "show")
    assert r.json()["id"] == SUB
    assert r.json()["user"] == {"name": PRINCIPAL.client_id, "type": "servicePrincipal"}
    tok = run("account", "get-access-token").json()
    assert app.tokens.verify(f"Bearer {tok['accessToken']}")["appid"] == PRINCIPAL.client_id
    assert tok["tokenType"] == "Bearer"
    assert isinstance(tok["expires_on"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", tok["expiresOn"])
    assert list(tok) == ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"]


def test_not_set_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    ctx = Context(
        stdout=io.StringIO(), stderr=err, settings_factory=lambda: load_settings(home=tmp_path, env={})
    )
    assert main(["group", "list"], context=ctx) == 1
    assert err.getvalue() == (
        f"ERROR: amr is not set up in {tmp_path}: run 'amr serve --detach' (or 'make run') first.\n"
    )


def run_on(home: Path, handler: httpx.MockTransport, *argv: str) -> tuple[int, str]:
    """The CLI with a transport double for one case the real app cannot produce."""
    err = io.StringIO()
    ctx = Context(
        stdout=io.StringIO(),
        stderr=err,
        settings_factory=lambda: load_settings(home=home, env={}),
        transport=handler,
    )
    return main(list(argv), context=ctx), err.getvalue()


def test_connection_refused(home: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    assert run_on(home, httpx.MockTransport(refuse), "redisenterprise", "list") == (
        1,
        f"ERROR: cannot reach the amr API at {ENDPOINT}: [Errno 111] Connection refused. "
        "Start it with 'amr serve --detach' or 'make run'.\n",
    )


def test_bad_secret(run: Runner, home: Path) -> None:
    creds = json.loads((home / "credentials.json").read_text())
    creds["clientSecret"] = "wrong"
    (home / "credentials.json").write_text(json.dumps(creds))
    r = run("group", "list")
    assert (r.code, r.err) == (1, "ERROR: (invalid_client) The client id or secret is not valid.\n")


def test_unexpected_exception_has_no_traceback(home: Path) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("kaboom")

    code, err = run_on(home, httpx.MockTransport(boom), "group", "list")
    assert code == 1
    assert err.startswith("ERROR: unexpected error: RuntimeError: kaboom.")
    assert "Traceback" not in err


def test_argument_errors_exit_2(run: Runner) -> None:
    r = run("redisenterprise", "create", "-n", "c")
    assert r.code == 2 and "usage: amr redisenterprise create" in r.err
    r = run("group", "list", "-o", "yaml")
    assert r.code == 2 and "invalid choice" in r.err
    r = run("nonsense")
    assert r.code == 2
    r = run(
        "redisenterprise", "create", "-n", "c", "-g", "g", "-l", "l", "--sku", "B", "--persistence", "aof=1"
    )
    assert r.code == 2 and "--persistence" in r.err
    assert run.requests == []  # refused before anything is sent


def test_help_exits_0(run: Runner) -> None:
    r = run("redisenterprise", "database", "--help")
    assert r.code == 0 and "show-connection" in r.out
