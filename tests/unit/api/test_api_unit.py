"""The ARM API in process: create_app over a SqlStore on a temp file and the FakeReconciler."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from amr.logcontext import LogContextFilter, current_log_context
from amr.model.resources import Cluster, Database, Operation
from tests.unit.api.api_harness import (
    API,
    CLUSTER,
    CLUSTER_BODY,
    DATABASE,
    GROUPS_API,
    MAX_BODY,
    SUB,
    TENANT,
    TOKEN_FORM,
    Api,
    create_cluster,
    create_database,
    poll,
)


def test_cluster_create_is_an_lro(api: Api) -> None:
    api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    r = api.call("PUT", CLUSTER, {**CLUSTER_BODY, "tags": {"env": "dev"}})
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["provisioningState"] == "Creating"
    assert r.headers["Retry-After"] == "1"
    status_url = r.headers["Azure-AsyncOperation"]
    assert status_url.startswith(
        f"https://testserver/subscriptions/{SUB}/providers/Microsoft.Cache/locations/eastus/"
    )
    assert api.reconciler.notifications == 1
    status = poll(api, status_url)
    assert status["status"] == "InProgress" and status["name"] == "op-1"
    assert status["endTime"] == "0001-01-01T00:00:00+00:00"
    assert status["startTime"] == api.clock.now().isoformat()
    api.clock.advance(5)
    api.reconciler.settle()
    status = poll(api, status_url)
    assert status["status"] == "Succeeded" and status["endTime"] == api.clock.now().isoformat()
    cluster = api.call("GET", CLUSTER).json()
    assert cluster["properties"]["provisioningState"] == "Succeeded"
    assert cluster["properties"]["resourceState"] == "Running"
    assert cluster["tags"] == {"env": "dev"}
    stored = api.store.get(Cluster, f"{SUB}/rg1/cache1")
    assert stored is not None and stored.sku_name == "Balanced_B1"


def test_database_create_places_ports_and_nodes(api: Api) -> None:
    create_cluster(api)
    api.busy_ports.add(10000)  # something else holds the first port on the host
    db = create_database(api)
    assert db["properties"]["port"] == 10001
    assert db["properties"]["provisioningState"] == "Succeeded"
    stored = api.store.get(Database, f"{SUB}/rg1/cache1/default")
    assert stored is not None
    assert [(n.role.value, n.port) for n in stored.nodes] == [("primary", 8500), ("replica", 8501)]
    keys = api.call("POST", DATABASE + "/listKeys").json()
    assert keys == {"primaryKey": stored.primary_key, "secondaryKey": stored.secondary_key}
    assert keys["primaryKey"] != keys["secondaryKey"]
    listed = api.call("GET", CLUSTER + "/databases").json()["value"]
    assert [d["id"] for d in listed] == [db["id"]]


def test_database_on_a_creating_cache_is_a_conflict(api: Api) -> None:
    api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    api.call("PUT", CLUSTER, CLUSTER_BODY)
    r = api.call("PUT", DATABASE, {"properties": {}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
    assert api.store.list(Database) == []


def test_patch_while_updating_is_a_conflict_and_repeat_is_200(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "NoEviction"}})
    assert r.status_code == 202, r.text
    assert r.json()["properties"]["provisioningState"] == "Updating"
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "AllKeysLFU"}})
    assert r.status_code == 409, r.text
    assert "busy" in r.json()["error"]["message"]
    # Repeating the state being applied is not a change, even while busy.
    r = api.call("PATCH", DATABASE, {"properties": {"evictionPolicy": "NoEviction"}})
    assert r.status_code == 200 and "Azure-AsyncOperation" not in r.headers
    api.reconciler.settle()
    assert api.call("GET", DATABASE).json()["properties"]["evictionPolicy"] == "NoEviction"


def test_regenerate_key_applies_and_returns_new_keys(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    before = api.call("POST", DATABASE + "/listKeys").json()
    r = api.call("POST", DATABASE + "/regenerateKey", {"keyType": "Secondary"})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["primaryKey"] == before["primaryKey"] and after["secondaryKey"] != before["secondaryKey"]
    assert api.reconciler.applied[-1].secondary_key == after["secondaryKey"]
    assert api.call("POST", DATABASE + "/listKeys").json() == after


def test_regenerate_key_failure_to_apply_is_503(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    api.reconciler.fail_apply = "node d1-0-0 is down"
    r = api.call("POST", DATABASE + "/regenerateKey", {"keyType": "Primary"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "KeyRegenerationPending"


def test_scaling_down_below_used_memory_is_refused(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    api.reconciler.memory[f"{SUB}/rg1/cache1/default"] = 2 * 1024**3
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B0"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidSkuForScaling"
    skus = api.call("POST", CLUSTER + "/listSkusForScaling").json()["skus"]
    names = {s["name"] for s in skus}
    assert "Balanced_B0" not in names and "Balanced_B1" not in names and "Balanced_B3" in names
    assert not any(n.startswith("FlashOptimized") for n in names)
    r = api.call("PATCH", CLUSTER, {"sku": {"name": "Balanced_B3"}})
    assert r.status_code == 202, r.text
    assert r.json()["properties"]["resourceState"] == "Scaling"


def test_flush_completes_its_operation(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("POST", DATABASE + "/flush")
    assert r.status_code == 202, r.text
    assert len(api.reconciler.flushed) == 1
    assert poll(api, r.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    result = api.client.get(r.headers["Location"])
    assert result.status_code == 200
    r = api.call("POST", DATABASE + "/flush", {"ids": ["/subscriptions/x"]})
    assert r.status_code == 400 and r.json()["error"]["target"] == "ids"


def test_delete_cluster_then_not_found(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("DELETE", CLUSTER)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    assert api.client.get(location).status_code == 202
    api.reconciler.settle()
    assert api.client.get(location).status_code == 204
    assert api.call("GET", CLUSTER).status_code == 404
    assert api.call("DELETE", CLUSTER).status_code == 204
    assert api.store.list(Database) == [] and api.store.list(Cluster) == []


def test_failed_operation_reports_its_error(api: Api) -> None:
    create_cluster(api)
    r = api.call("PUT", DATABASE, {"properties": {}})
    api.reconciler.fail(r.json()["id"], "DatabaseCreateFailed", "the node did not start")
    status = poll(api, r.headers["Azure-AsyncOperation"])
    assert status["status"] == "Failed"
    assert status["error"] == {"code": "DatabaseCreateFailed", "message": "the node did not start"}


def test_group_delete_removes_everything(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("DELETE", f"/subscriptions/{SUB}/resourcegroups/rg1", query=GROUPS_API)
    assert r.status_code == 202, r.text
    assert api.client.get(r.headers["Location"]).status_code == 202
    api.reconciler.settle()
    assert api.client.get(r.headers["Location"]).status_code == 200
    assert api.call("GET", f"/subscriptions/{SUB}/resourcegroups/rg1", query=GROUPS_API).status_code == 404
    assert api.call("GET", f"/subscriptions/{SUB}/providers/Microsoft.Cache/redisEnterprise").json() == {
        "value": []
    }
    assert all(op.status.done for op in api.store.list(Operation))


def test_expired_token_is_refused(api: Api) -> None:
    create_cluster(api)
    api.clock.advance(3601)
    r = api.call("GET", CLUSTER)
    assert r.status_code == 401 and r.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_token_endpoint(api: Api) -> None:
    form = "grant_type=client_credentials&client_id=client&client_secret=secret&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
    r = api.client.post(f"/{TENANT}/oauth2/v2.0/token", content=form, headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert api.tokens.verify(f"Bearer {token}")["tid"] == TENANT
    bad = api.client.post(f"/{TENANT}/oauth2/v2.0/token", content=form.replace("secret&", "nope&"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert api.client.post("/other-tenant/oauth2/v2.0/token", content=form).status_code == 400


def test_token_endpoint_refuses_a_source_after_wrong_secrets_even_with_the_right_one(api: Api) -> None:
    url = f"/{TENANT}/oauth2/v2.0/token"
    wrong = TOKEN_FORM.replace("client_secret=secret", "client_secret=guess")
    assert [api.client.post(url, content=wrong).status_code for _ in range(3)] == [401, 401, 401]
    refused = api.client.post(url, content=TOKEN_FORM)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert refused.json()["error"] == "temporarily_unavailable" and "access_token" not in refused.json()
    api.clock.advance(29)
    assert api.client.post(url, content=TOKEN_FORM).headers["Retry-After"] == "1"
    api.clock.advance(1)
    assert api.client.post(url, content=TOKEN_FORM).status_code == 200


def test_a_requests_log_lines_carry_its_request_id(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(LogContextFilter())
    url = f"/{TENANT}/oauth2/v2.0/token"
    wrong = TOKEN_FORM.replace("client_secret=secret", "client_secret=guess")
    with caplog.at_level(logging.WARNING, logger="amr.api"):
        for i in range(3):
            api.client.post(url, content=wrong, headers={"x-ms-client-request-id": f"req-{i}"})
    (refusal,) = [r for r in caplog.records if "source refused" in r.getMessage()]
    assert refusal.request_id == "req-2"  # type: ignore[attr-defined]
    assert current_log_context() == {}


def test_right_secrets_and_other_errors_do_not_count_towards_the_throttle(api: Api) -> None:
    url = f"/{TENANT}/oauth2/v2.0/token"
    for _ in range(5):
        assert api.client.post(url, content=TOKEN_FORM).status_code == 200
        assert api.client.post(url, content="grant_type=password").status_code == 400
    other_scope = TOKEN_FORM.replace("management.azure.com", "vault.azure.net")
    refused = api.client.post(url, content=other_scope)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert api.client.post(url, content=TOKEN_FORM).status_code == 200


@pytest.mark.parametrize("path", [f"/{TENANT}/oauth2/v2.0/token", f"{CLUSTER}?{API}"])
def test_body_over_the_cap_is_413_by_content_length_and_by_chunks(api: Api, path: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(64):
            yield b"x" * 8192

    declared = api.client.request("PUT" if "?" in path else "POST", path, content=b"x" * (MAX_BODY + 1))
    streamed = api.client.request("PUT" if "?" in path else "POST", path, content=chunks())
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "RequestEntityTooLarge"
        assert str(MAX_BODY) in r.json()["error"]["message"] and r.headers["connection"] == "close"
    assert api.client.get(f"{CLUSTER}?{API}").status_code == 404  # nothing was created


def test_body_at_the_cap_is_read(api: Api) -> None:
    body = json.dumps({**CLUSTER_BODY, "tags": {"pad": "x" * 200}}).encode()
    padded = body + b" " * (MAX_BODY - len(body))
    api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    assert api.call("PUT", CLUSTER, padded).status_code == 201


def test_client_request_id_is_echoed(api: Api) -> None:
    r = api.client.get(
        f"/providers/Microsoft.Cache/operations?{API}", headers={"x-ms-client-request-id": "abc"}
    )
    assert r.status_code == 200 and r.headers["x-ms-client-request-id"] == "abc"
    missing = api.client.get(f"{CLUSTER}?{API}", headers={"x-ms-client-request-id": "def"})
    assert missing.status_code == 404 and missing.headers["x-ms-client-request-id"] == "def"
    unknown = api.client.get("/nothing", headers={"x-ms-client-request-id": "ghi"})
    assert unknown.status_code == 404 and unknown.headers["x-ms-client-request-id"] == "ghi"


def test_head_on_a_resource_group_tells_whether_it_exists(api: Api) -> None:
    api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    assert api.call("HEAD", f"/subscriptions/{SUB}/resourcegroups/rg1", None, GROUPS_API).status_code == 204
    assert api.call("HEAD", f"/subscriptions/{SUB}/resourcegroups/nope", None, GROUPS_API).status_code == 404


def test_sku_names_are_stored_in_catalogue_spelling(api: Api) -> None:
    create_cluster(api, {**CLUSTER_BODY, "sku": {"name": "balanced_b1"}})
    assert api.call("GET", CLUSTER).json()["sku"]["name"] == "Balanced_B1"
    # Repeating the PUT with another spelling is the same state: a no-op 200.
    r = api.call("PUT", CLUSTER, {**CLUSTER_BODY, "sku": {"name": "BALANCED_B1"}})
    assert r.status_code == 200 and "Azure-AsyncOperation" not in r.headers


def _record_event(api: Api, when: str, kind: str, node: str, **extra: Any) -> None:
    from amr.model.events import DatabaseEvent, EventKind

    db = api.store.list(Database)[0]
    api.store.insert(
        DatabaseEvent(
            f"{when}-{kind}-{node}", db.key, db.id, when, EventKind(kind), f"cause of {kind}", node, **extra
        )
    )


def test_database_events_list_the_newest_oldest_first_in_arm_shape(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    assert api.call("GET", DATABASE + "/events").json() == {"value": []}
    _record_event(api, "2025-07-01T12:00:01+00:00", "restart", "n1", shard=0, old_pid=10, new_pid=11)
    _record_event(api, "2025-07-01T12:00:02+00:00", "recovery", "n0", new_pid=12)
    _record_event(api, "2025-07-01T12:00:03+00:00", "repair", "n1")
    r = api.call("GET", DATABASE + "/events")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert [e["properties"]["kind"] for e in value] == ["restart", "recovery", "repair"]
    first = value[0]
    assert first == {
        "id": f"{DATABASE}/events/2025-07-01T12:00:01+00:00-restart-n1",
        "name": "2025-07-01T12:00:01+00:00-restart-n1",
        "type": "Microsoft.Cache/redisEnterprise/databases/events",
        "properties": {
            "time": "2025-07-01T12:00:01+00:00",
            "kind": "restart",
            "cause": "cause of restart",
            "node": "n1",
            "shard": 0,
            "oldPid": 10,
            "newPid": 11,
        },
    }
    top = api.call("GET", DATABASE + "/events", query=f"{API}&$top=2").json()["value"]
    assert [e["properties"]["kind"] for e in top] == ["recovery", "repair"]


def test_database_events_reject_a_bad_top_and_a_missing_database(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    r = api.call("GET", DATABASE + "/events", query=f"{API}&$top=0")
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter"
    r = api.call("GET", CLUSTER + "/databases/other/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_enabling_high_availability_while_a_node_is_down_is_a_conflict_and_changes_nothing(api: Api) -> None:
    create_cluster(
        api,
        {**CLUSTER_BODY, "properties": {"publicNetworkAccess": "Enabled", "highAvailability": "Disabled"}},
    )
    create_database(api)
    before = api.call("GET", CLUSTER).json()
    api.reconciler.down[f"{SUB}/rg1/cache1/default"] = ["dabc-0-0 (stopped)"]
    r = api.call("PATCH", CLUSTER, {"properties": {"highAvailability": "Enabled"}})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "Conflict"
    assert "dabc-0-0 (stopped)" in error["message"] and "retry" in error["message"]
    assert api.call("GET", CLUSTER).json() == before
    api.reconciler.down.clear()
    r = api.call("PATCH", CLUSTER, {"properties": {"highAvailability": "Enabled"}})
    assert r.status_code == 202, r.text
