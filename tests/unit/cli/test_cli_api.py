"""The amr CLI against the real API app in process (amr.testing.api: create_app over a SqlStore,
the FakeReconciler settling between requests): the requests it sends are the ones the API accepts,
and what it prints is what the API answers. Transport details the real API cannot be made to show
(a nextLink on every page, a given number of polls, odd error shapes) are in test_cli_main.py."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from amr.api.auth import Principal
from amr.cli.context import Context
from amr.cli.main import main
from amr.settings import Settings, load_settings
from amr.testing.api import InProcessApi, SettlingTransport, in_process_api

SUB = "00000000-0000-0000-0000-0000000000aa"
PRINCIPAL = Principal(
    "00000000-0000-0000-0000-0000000000bb", "00000000-0000-0000-0000-0000000000cc", "s3cret"
)
BASE = ("--cluster-name", "cache1", "-g", "rg1")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        assert self.out, (self.code, self.err)
        return json.loads(self.out)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessApi]:
    with in_process_api(Settings(home=tmp_path / "api"), subscription_id=SUB, principal=PRINCIPAL) as api:
        yield api


@pytest.fixture
def run(tmp_path: Path, app: InProcessApi, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    home = tmp_path / "cli"
    home.mkdir()
    creds = {
        "tenantId": PRINCIPAL.tenant_id,
        "subscriptionId": SUB,
        "clientId": PRINCIPAL.client_id,
        "clientSecret": PRINCIPAL.client_secret,
        "managementEndpoint": "https://localhost:8443",
        "caFile": str(home / "pki" / "ca.pem"),
    }
    (home / "credentials.json").write_text(json.dumps(creds))

    def _run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(
            stdin=io.StringIO(),
            stdout=out,
            stderr=err,
            settings_factory=lambda: load_settings(home=home, env={}),
            transport=SettlingTransport(app),
            poll_interval=0.25,
            sleep=lambda _: None,
        )
        code = main(list(argv), context=ctx)
        captured = capsys.readouterr()
        all_err = err.getvalue() + captured.err
        assert "Traceback" not in all_err and "Traceback" not in out.getvalue()
        return Result(code, out.getvalue() + captured.out, all_err)

    return _run


def create_cluster(run: Callable[..., Result], *extra: str) -> Result:
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    return run(
        "redisenterprise",
        "create",
        "-n",
        "cache1",
        "-g",
        "rg1",
        "-l",
        "westus",
        "--sku",
        "Balanced_B5",
        *extra,
    )


def test_groups_create_show_list_delete(run: Callable[..., Result]) -> None:
    r = run("group", "create", "-n", "rg1", "-l", "westus", "--tags", "env=dev", "team")
    assert r.code == 0, r.err
    assert r.json()["tags"] == {"env": "dev", "team": ""}
    assert run("group", "create", "-n", "rg2", "-l", "eastus").code == 0
    assert run("group", "show", "-n", "rg1").json()["location"] == "westus"
    assert sorted(g["name"] for g in run("group", "list").json()) == ["rg1", "rg2"]
    r = run("group", "delete", "-n", "rg1", "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    r = run("group", "show", "-n", "rg1")
    assert r.code == 1
    assert r.err.startswith("ERROR: (ResourceGroupNotFound) ")


def test_create_cluster_with_database_waits_for_both_operations(run: Callable[..., Result]) -> None:
    r = create_cluster(
        run,
        "--tags", "a=b",
        "--minimum-tls-version", "1.2",
        "--persistence", "aof-enabled=true", "aof-frequency=1s",
        "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    assert r.code == 0, r.err
    out = r.json()
    assert out["name"] == "cache1" and out["resourceGroup"] == "rg1" and out["tags"] == {"a": "b"}
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert out["properties"]["minimumTlsVersion"] == "1.2"
    (db,) = out["databases"]
    assert db["name"] == "default"
    assert db["properties"]["persistence"]["aofEnabled"] is True
    assert db["properties"]["persistence"]["aofFrequency"] == "1s"
    assert db["properties"]["accessKeysAuthentication"] == "Enabled"


def test_show_list_query_and_tsv(run: Callable[..., Result]) -> None:
    create_cluster(run)
    assert run("redisenterprise", "show", "-n", "cache1", "-g", "rg1").json()["sku"]["name"] == "Balanced_B5"
    assert [c["name"] for c in run("redisenterprise", "list", "-g", "rg1").json()] == ["cache1"]
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1", "--query", "sku.name", "-o", "tsv")
    assert r.out == "Balanced_B5\n"


def test_database_keys_are_listed_and_regenerated(run: Callable[..., Result]) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    keys = run("redisenterprise", "database", "list-keys", *BASE).json()
    assert set(keys) == {"primaryKey", "secondaryKey"} and all(keys.values())
    r = run("redisenterprise", "database", "regenerate-key", *BASE, "--key-type", "Secondary")
    assert r.code == 0, r.err
    again = run("redisenterprise", "database", "list-keys", *BASE).json()
    assert again["primaryKey"] == keys["primaryKey"] and again["secondaryKey"] != keys["secondaryKey"]
    r = run("redisenterprise", "database", "list-keys", *BASE, "--query", "primaryKey", "-o", "tsv")
    assert r.out == keys["primaryKey"] + "\n"


def test_database_show_update_flush_delete(run: Callable[..., Result]) -> None:
    create_cluster(run)
    assert run("redisenterprise", "database", "show", *BASE).json()["resourceGroup"] == "rg1"
    assert [d["name"] for d in run("redisenterprise", "database", "list", *BASE).json()] == ["default"]
    r = run("redisenterprise", "database", "update", *BASE, "--eviction-policy", "AllKeysLRU")
    assert r.code == 0, r.err
    assert (
        run("redisenterprise", "database", "show", *BASE).json()["properties"]["evictionPolicy"]
        == "AllKeysLRU"
    )
    r = run("redisenterprise", "database", "flush", *BASE, "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    r = run("redisenterprise", "database", "delete", *BASE, "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    assert run("redisenterprise", "database", "list", *BASE).json() == []


def test_delete_cluster(run: Callable[..., Result]) -> None:
    create_cluster(run)
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    assert run("redisenterprise", "list", "-g", "rg1").json() == []
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1")
    assert r.code == 1 and r.err.startswith("ERROR: (ResourceNotFound) "), r.err


def test_the_api_refusal_is_printed_as_its_arm_error(run: Callable[..., Result]) -> None:
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    r = run("redisenterprise", "create", "-n", "cache1", "-g", "rg1", "-l", "westus", "--sku", "Nope_X1")
    assert r.code == 1
    assert r.err.startswith("ERROR: (") and "Nope_X1" in r.err, r.err
    assert r.out == ""


def test_account_token_is_accepted_by_the_api(run: Callable[..., Result], app: InProcessApi) -> None:
    token = run("account", "get-access-token").json()["accessToken"]
    claims = app.tokens.verify(f"Bearer {token}")
    assert (claims["appid"], claims["tid"]) == (PRINCIPAL.client_id, PRINCIPAL.tenant_id)
