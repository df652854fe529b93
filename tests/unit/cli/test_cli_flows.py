"""Whole user flows of the amr CLI against the real API app (see conftest.py): what a user does
from a group to a cache to its keys and back, each step read back through the CLI."""

from __future__ import annotations

from amr.testing.api import InProcessApi

from .conftest import BASE, PRINCIPAL, Runner, create_cluster


def test_groups_create_show_list_delete(run: Runner) -> None:
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


def test_create_cluster_with_database_waits_for_both_operations(run: Runner) -> None:
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


def test_show_list_query_and_tsv(run: Runner) -> None:
    create_cluster(run)
    assert run("redisenterprise", "show", "-n", "cache1", "-g", "rg1").json()["sku"]["name"] == "Balanced_B5"
    assert [c["name"] for c in run("redisenterprise", "list", "-g", "rg1").json()] == ["cache1"]
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1", "--query", "sku.name", "-o", "tsv")
    assert r.out == "Balanced_B5\n"


def test_database_keys_are_listed_and_regenerated(run: Runner) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    keys = run("redisenterprise", "database", "list-keys", *BASE).json()
    assert set(keys) == {"primaryKey", "secondaryKey"} and all(keys.values())
    r = run("redisenterprise", "database", "regenerate-key", *BASE, "--key-type", "Secondary")
    assert r.code == 0, r.err
    again = run("redisenterprise", "database", "list-keys", *BASE).json()
    assert again["primaryKey"] == keys["primaryKey"] and again["secondaryKey"] != keys["secondaryKey"]
    r = run("redisenterprise", "database", "list-keys", *BASE, "--query", "primaryKey", "-o", "tsv")
    assert r.out == keys["primaryKey"] + "\n"


def test_database_show_update_flush_delete(run: Runner) -> None:
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


def test_delete_cluster(run: Runner) -> None:
    create_cluster(run)
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    assert run("redisenterprise", "list", "-g", "rg1").json() == []
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1")
    assert r.code == 1 and r.err.startswith("ERROR: (ResourceNotFound) "), r.err


def test_the_api_refusal_is_printed_as_its_arm_error(run: Runner) -> None:
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    r = run("redisenterprise", "create", "-n", "cache1", "-g", "rg1", "-l", "westus", "--sku", "Nope_X1")
    assert r.code == 1
    assert r.err.startswith("ERROR: (") and "Nope_X1" in r.err, r.err
    assert r.out == ""


def test_account_token_is_accepted_by_the_api(run: Runner, app: InProcessApi) -> None:
    token = run("account", "get-access-token").json()["accessToken"]
    claims = app.tokens.verify(f"Bearer {token}")
    assert (claims["appid"], claims["tid"]) == (PRINCIPAL.client_id, PRINCIPAL.tenant_id)
