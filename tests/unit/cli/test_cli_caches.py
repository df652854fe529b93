"""``amr redisenterprise`` (clusters) against the real API app: the bodies the CLI sends, the two
operations a create waits for, progress on a tty, failures as ARM errors, output formats."""

from __future__ import annotations

import json
from typing import Any

from amr.testing.api import InProcessApi

from .conftest import POLLS, SUB, Runner, Tty, create_cluster, is_poll

CLUSTERS = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Cache/redisEnterprise"


def sent_body(run: Runner, method: str, path: str) -> Any:
    """The JSON body of the last ``method`` request the CLI sent to ``path``."""
    (request, *_) = [q for q in reversed(run.requests) if q.method == method and q.url.path == path]
    return json.loads(request.content)


def test_create_cluster_with_database(run: Runner) -> None:
    r = create_cluster(
        run,
        "--tags", "a=b",
        "--minimum-tls-version", "1.2",
        "--persistence", "aof-enabled=true", "aof-frequency=1s",
        "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert sent_body(run, "PUT", f"{CLUSTERS}/cache1") == {
        "location": "westus",
        "sku": {"name": "Balanced_B5"},
        "tags": {"a": "b"},
        "properties": {"minimumTlsVersion": "1.2", "publicNetworkAccess": "Enabled"},
    }
    assert sent_body(run, "PUT", f"{CLUSTERS}/cache1/databases/default") == {
        "properties": {
            "persistence": {"aofEnabled": True, "aofFrequency": "1s"},
            "accessKeysAuthentication": "Enabled",
        }
    }
    out = r.json()
    assert out["name"] == "cache1" and out["resourceGroup"] == "rg1"
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert [d["name"] for d in out["databases"]] == ["default"]
    assert out["databases"][0]["resourceGroup"] == "rg1"
    # Azure-AsyncOperation went InProgress -> Succeeded for both the cluster and the database.
    statuses = [q for q in run.requests if is_poll(q)]
    assert all("/operationsstatus/" in q.url.path.lower() for q in statuses)
    assert len(statuses) == 2 * (POLLS + 1)
    assert r.err == ""  # stderr is not a tty: no progress
    cache_calls = [q for q in run.requests if "/providers/Microsoft.Cache/" in q.url.path]
    assert cache_calls and all(q.url.params["api-version"] == "2025-07-01" for q in cache_calls)


def test_modules_are_sent_and_the_refusal_printed(run: Runner) -> None:
    r = create_cluster(
        run, "--modules", "name=RedisBloom", "args=ERROR_RATE 0.02", "--modules", "name=RediSearch"
    )
    assert sent_body(run, "PUT", f"{CLUSTERS}/cache1/databases/default") == {
        "properties": {"modules": [{"name": "RedisBloom", "args": "ERROR_RATE 0.02"}, {"name": "RediSearch"}]}
    }
    # amr has no modules yet: the API refuses them, and the CLI says so in one ARM error line.
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith("ERROR: (NotSupported) Modules (RedisBloom, RediSearch) are not available")
    assert r.err.count("\n") == 1


def test_progress_on_a_tty(run: Runner) -> None:
    err = Tty()
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    r = run(
        "redisenterprise", "create", "-n", "c", "-g", "rg1", "-l", "westus", "--sku", "Balanced_B5", stderr=err
    )  # fmt: skip
    assert r.code == 0, r.err
    assert " - Running ." in err.getvalue()


def test_create_no_database(run: Runner) -> None:
    r = create_cluster(run, "--no-database", "--high-availability", "Disabled")
    assert r.code == 0, r.err
    assert r.json()["databases"] == []
    assert sent_body(run, "PUT", f"{CLUSTERS}/cache1")["properties"]["highAvailability"] == "Disabled"
    r = run(
        "redisenterprise", "create", "-n", "c2", "-g", "rg1", "-l", "x", "--sku", "B", "--no-database", "--port", "1"
    )  # fmt: skip
    assert r.code == 2
    assert "usage:" in r.err and "--no-database conflicts" in r.err


def test_create_no_wait_prints_nothing(run: Runner) -> None:
    r = create_cluster(run, "--no-wait", "--no-database")
    assert (r.code, r.out) == (0, ""), r.err
    assert not [q for q in run.requests if is_poll(q)]


def test_failed_lro_prints_arm_error(run: Runner, app: InProcessApi) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    run.settle = lambda: app.reconciler.fail(
        f"{CLUSTERS}/failme", "ProvisioningFailed", "valkey-server did not start"
    )
    r = run("redisenterprise", "create", "-n", "failme", "-g", "rg1", "-l", "westus", "--sku", "Balanced_B5")
    assert r.code == 1
    assert r.err == "ERROR: (ProvisioningFailed) valkey-server did not start\n"
    assert r.out == ""


def test_arm_400_error(run: Runner) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("redisenterprise", "create", "-n", "c1", "-g", "rg1", "-l", "westus", "--sku", "Bad_SKU")
    assert r.code == 1
    assert r.err.startswith("ERROR: (InvalidParameter) The SKU 'Bad_SKU' is not valid. Allowed values: ")
    assert "Balanced_B5" in r.err and r.err.count("\n") == 1


def test_show_list_and_query(run: Runner) -> None:
    create_cluster(run)
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1")
    assert r.json()["databases"][0]["properties"]["port"] == 10000
    r = run("redisenterprise", "list", "--query", "[].{name:name, rg:resourceGroup}", "-o", "tsv")
    assert r.out == "cache1\trg1\n"
    r = run("redisenterprise", "list", "-g", "rg1", "--query", "[0].databases[0].properties.port")
    assert r.out == "10000\n"
    r = run("redisenterprise", "list", "-o", "table")
    lines = r.out.splitlines()
    # az's first columns, then the API's other scalar fields (kind) sorted.
    assert lines[0].split() == ["Name", "ResourceGroup", "Location", "Kind"]
    assert set(lines[1]) == {"-", " "}
    kind = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1").json()["kind"]
    assert lines[2].split() == ["cache1", "rg1", "westus", kind]


def test_bad_query(run: Runner) -> None:
    create_cluster(run)
    r = run("redisenterprise", "list", "--query", "[?")
    assert r.code == 2 and "argument --query: invalid jmespath query supplied: '[?'" in r.err


def test_update_sends_only_given_fields(run: Runner) -> None:
    create_cluster(run)
    r = run("redisenterprise", "update", "-n", "cache1", "-g", "rg1", "--sku", "Balanced_B10")
    assert r.code == 0, r.err
    assert sent_body(run, "PATCH", f"{CLUSTERS}/cache1") == {"sku": {"name": "Balanced_B10"}}
    assert r.json()["sku"]["name"] == "Balanced_B10"
    r = run("redisenterprise", "update", "-n", "cache1", "-g", "rg1")
    assert r.code == 2 and "at least one of" in r.err


def test_delete_cluster_and_skus(run: Runner, app: InProcessApi) -> None:
    create_cluster(run)
    r = run("redisenterprise", "list-skus-for-scaling", "-n", "cache1", "-g", "rg1")
    assert r.code == 0, r.err
    answer = app.client.post(
        f"{CLUSTERS}/cache1/listSkusForScaling?api-version=2025-07-01",
        headers={"Authorization": f"Bearer {app.token()}"},
    )
    assert r.json() == answer.json() and r.json()["skus"]  # what the API answers, as it answers it
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")
    assert (r.code, r.out) == (0, ""), r.err
    assert run("redisenterprise", "list", "-g", "rg1").json() == []
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")  # 204: absent is fine
    assert r.code == 0, r.err
    assert [q.method for q in run.requests[-2:]] == ["POST", "DELETE"]  # token, then the one DELETE
