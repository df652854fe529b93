"""The restart and upgradeDBRedisVersion endpoints, and the 409s that keep a restart from overlapping
other operations, in process over the FakeReconciler."""

from __future__ import annotations

import dataclasses

from amr.model.enums import OperationStatus, ProvisioningState, ResourceState
from amr.model.resources import Database, Operation
from tests.unit.api.api_harness import CLUSTER, DATABASE, SUB, Api, create_cluster, create_database, poll


def _db(api: Api) -> Database:
    db = api.store.get(Database, f"{SUB}/rg1/cache1/default")
    assert db is not None
    return db


def test_restart_of_a_missing_database_or_cache_is_404(api: Api) -> None:
    create_cluster(api)
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"
    r = api.call("POST", DATABASE + "/upgradeDBRedisVersion")
    assert r.status_code == 404
    r = api.call("POST", CLUSTER.replace("cache1", "nope") + "/databases/default/restart")
    assert r.status_code == 404
    assert api.reconciler.restarted == []


def test_restart_is_an_lro_with_both_polling_headers(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 202, r.text
    assert r.headers["Retry-After"] == "1"
    assert "/operationsStatus/" in r.headers["Azure-AsyncOperation"]
    assert "/operationResults/" in r.headers["Location"]
    ((db, op),) = api.reconciler.restarted
    assert db.key == _db(api).key and op.action == "rollingRestart"
    assert poll(api, r.headers["Azure-AsyncOperation"])["status"] == "InProgress"
    assert api.client.get(r.headers["Location"]).status_code == 202
    api.reconciler.settle()
    assert poll(api, r.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    assert api.client.get(r.headers["Location"]).status_code == 200
    # Without a body (or rolling false) every node restarts at once.
    r = api.call("POST", DATABASE + "/restart")
    assert r.status_code == 202, r.text
    assert api.reconciler.restarted[-1][1].action == "restart"


def test_restart_body_is_checked(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/restart", {"rolling": "yes"})
    assert r.status_code == 400 and r.json()["error"]["target"] == "rolling"
    assert api.reconciler.restarted == []


def test_upgrade_db_redis_version_is_a_rolling_restart(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/upgradeDBRedisVersion")
    assert r.status_code == 202, r.text
    assert "Location" in r.headers
    assert api.reconciler.restarted[-1][1].action == "upgrade"


def test_nothing_else_may_change_a_restarting_database(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 202
    before_db, before_ops = _db(api), api.store.list(Operation)
    attempts = [
        ("POST", DATABASE + "/restart", {"rolling": True}),
        ("POST", DATABASE + "/upgradeDBRedisVersion", None),
        ("PATCH", DATABASE, {"properties": {"evictionPolicy": "AllKeysLRU"}}),
        ("PUT", DATABASE, {"properties": {"evictionPolicy": "AllKeysLRU"}}),
        ("POST", DATABASE + "/flush", None),
        ("POST", DATABASE + "/regenerateKey", {"keyType": "Primary"}),
        ("DELETE", DATABASE, None),
        ("PATCH", CLUSTER, {"sku": {"name": "Balanced_B3"}}),
        ("DELETE", CLUSTER, None),
    ]
    for method, path, body in attempts:
        r = api.call(method, path, body)
        assert r.status_code == 409, (method, path, r.text)
        error = r.json()["error"]
        assert error["code"] == "Conflict"
        assert "is running" in error["message"] and "retry" in error["message"].lower()
    # Nothing changed: the record, the operations, the nodes.
    assert _db(api) == before_db
    assert api.store.list(Operation) == before_ops
    assert len(api.reconciler.restarted) == 1 and api.reconciler.flushed == []
    # Reading still works, and once the restart is done so does the rest.
    assert api.call("GET", DATABASE).status_code == 200
    api.reconciler.settle()
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "AllKeysLRU"}})
    assert r.status_code == 202, r.text


def test_a_restart_waits_for_every_other_operation(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    # An update of the database is running.
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "AllKeysLRU"}})
    assert r.status_code == 202
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 409 and "updating" in r.json()["error"]["message"]
    api.reconciler.settle()
    # A flush of the database is running (its operation is not finished yet).
    db = _db(api)
    flush = Operation("op-flush", SUB, "eastus", db.id, "flush", start_time="t")
    api.store.insert(flush)
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 409 and "flush" in r.json()["error"]["message"]
    api.store.replace(flush, dataclasses.replace(flush, status=OperationStatus.SUCCEEDED))
    # An update of the cache is running.
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B3"}})
    assert r.status_code == 202
    r = api.call("POST", DATABASE + "/upgradeDBRedisVersion")
    assert r.status_code == 409 and "cache" in r.json()["error"]["message"]
    assert api.reconciler.restarted == []
    api.reconciler.settle()
    assert api.call("POST", DATABASE + "/restart", {"rolling": True}).status_code == 202


def test_a_database_that_failed_to_be_created_is_not_restarted(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    db = _db(api)
    api.store.replace(
        db,
        dataclasses.replace(
            db, provisioning_state=ProvisioningState.FAILED, resource_state=ResourceState.CREATE_FAILED
        ),
    )
    r = api.call("POST", DATABASE + "/restart", {"rolling": True})
    assert r.status_code == 409 and "could not be created" in r.json()["error"]["message"]
    assert api.reconciler.restarted == []


def test_operation_status_carries_what_a_restart_did(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/restart")
    ((_, op),) = api.reconciler.restarted
    current = api.store.get(Operation, op.id)
    assert current is not None
    done = dataclasses.replace(current, status=OperationStatus.SUCCEEDED, message="Restarted 1 node(s).")
    api.store.replace(current, done)
    status = poll(api, r.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded"
    assert status["properties"] == {"message": "Restarted 1 node(s)."}
