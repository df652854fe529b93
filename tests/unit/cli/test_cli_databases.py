"""``amr redisenterprise database`` against the real API app: keys, show, list, update, flush,
delete, and show-connection in its formats."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from amr.model.resources import Database
from amr.testing.api import InProcessApi

from .conftest import BASE, SUB, Runner, create_cluster

DATABASE = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Cache/redisEnterprise/cache1/databases/default"
PRIMARY_KEY = "pr1mary+key/with=chars;x"  # what a shell and a URL must quote


def given_keys(app: InProcessApi, primary: str, secondary: str) -> None:
    """Give the one database these keys, so that output with them can be asserted exactly."""
    (db,) = app.store.list(Database)
    app.store.replace(db, dataclasses.replace(db, primary_key=primary, secondary_key=secondary))


def test_database_keys(run: Runner, app: InProcessApi) -> None:
    create_cluster(run)
    given_keys(app, PRIMARY_KEY, "second")
    r = run("redisenterprise", "database", "list-keys", *BASE)
    assert r.json() == {"primaryKey": PRIMARY_KEY, "secondaryKey": "second"}
    r = run("redisenterprise", "database", "regenerate-key", *BASE, "--key-type", "Secondary")
    assert r.code == 0, r.err
    assert json.loads(run.requests[-1].content) == {"keyType": "Secondary"}
    regenerated = r.json()
    assert regenerated["primaryKey"] == PRIMARY_KEY and regenerated["secondaryKey"] not in ("", "second")
    assert run("redisenterprise", "database", "list-keys", *BASE).json() == regenerated
    r = run("redisenterprise", "database", "list-keys", *BASE, "--query", "primaryKey", "-o", "tsv")
    assert r.out == PRIMARY_KEY + "\n"


def test_database_show_list_update_flush_delete(run: Runner) -> None:
    create_cluster(run)
    assert run("redisenterprise", "database", "show", *BASE).json()["resourceGroup"] == "rg1"
    assert [d["name"] for d in run("redisenterprise", "database", "list", *BASE).json()] == ["default"]
    r = run("redisenterprise", "database", "update", *BASE, "--eviction-policy", "AllKeysLRU")
    assert r.code == 0, r.err
    (patch,) = [q for q in run.requests if q.method == "PATCH" and q.url.path == DATABASE]
    assert json.loads(patch.content) == {"properties": {"evictionPolicy": "AllKeysLRU"}}
    assert r.json()["properties"]["evictionPolicy"] == "AllKeysLRU"
    r = run("redisenterprise", "database", "flush", *BASE, "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    r = run("redisenterprise", "database", "delete", *BASE, "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    assert run("redisenterprise", "database", "list", *BASE).json() == []


def test_show_connection_env_with_keys(run: Runner, app: InProcessApi, home: Path) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    given_keys(app, PRIMARY_KEY, "second")
    r = run("redisenterprise", "database", "show-connection", *BASE, "--format", "env")
    assert r.code == 0, r.err
    ca = str(home / "pki" / "ca.pem")
    assert r.out.splitlines() == [
        "export AMR_HOST=localhost",
        "export AMR_PORT=10000",
        f"export AMR_PASSWORD={shlex.quote(PRIMARY_KEY)}",
        "export AMR_SSL=true",
        f"export SSL_CERT_FILE={shlex.quote(ca)}",
    ]
    assert r.out.splitlines()[2] == "export AMR_PASSWORD='pr1mary+key/with=chars;x'"
    assert r.err == ""


def test_show_connection_json_and_disabled_keys(run: Runner) -> None:
    create_cluster(run, "--client-protocol", "Plaintext")
    r = run("redisenterprise", "database", "show-connection", *BASE)
    assert r.code == 0, r.err
    assert r.json() == {
        "host": "localhost",
        "port": 10000,
        "ssl": False,
        "password": None,
        "caFile": None,
        "redisUrl": "redis://localhost:10000",
    }
    assert r.err.startswith("WARNING: access keys authentication is disabled")
    assert "--access-keys-authentication Enabled" in r.err
    r = run("redisenterprise", "database", "show-connection", *BASE, "--format", "env")
    assert r.out.splitlines() == [
        "export AMR_HOST=localhost",
        "export AMR_PORT=10000",
        "export AMR_SSL=false",
    ]


def test_show_connection_json_with_password(run: Runner, app: InProcessApi, home: Path) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    given_keys(app, PRIMARY_KEY, "second")
    info = run("redisenterprise", "database", "show-connection", *BASE).json()
    assert info["redisUrl"] == "rediss://:pr1mary%2Bkey%2Fwith%3Dchars%3Bx@localhost:10000"
    assert info["password"] == PRIMARY_KEY and info["ssl"] is True
    assert info["caFile"] == str(home / "pki" / "ca.pem")
    r = run("redisenterprise", "database", "show-connection", *BASE, "--format", "redis-py")
    assert "redis.RedisCluster(host='localhost', port=10000" in r.out and "ssl=True" in r.out
