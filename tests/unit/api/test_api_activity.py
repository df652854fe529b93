"""The activity log through the API in process: every write and action is recorded (Started, then
how it was answered, then a long-running operation's end) with the caller, the correlation id and
no secret, and the query answers in Azure's shape with $filter, $select and nextLink paging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from amr.api.app import ROUTES
from amr.api.auth import Principal
from amr.logic.arm.activity import choose_operation_name
from amr.settings import ApiSettings, Settings
from amr.testing.api import in_process_api
from tests.unit.api.api_harness import (
    CLUSTER,
    CLUSTER_BODY,
    DATABASE,
    MAX_BODY,
    SUB,
    TENANT,
    Api,
    create_cluster,
    create_database,
)

LOG = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
DAY = "eventTimestamp ge '2025-07-01T00:00:00Z' and eventTimestamp le '2025-07-02T00:00:00Z'"
PAGE = 3


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api_settings = ApiSettings(max_body_bytes=MAX_BODY, activity_log_page_size=PAGE)
    with in_process_api(
        Settings(home=tmp_path, api=api_settings),
        subscription_id=SUB,
        principal=Principal(TENANT, "client", "secret"),
    ) as app:
        app.client.headers["Authorization"] = f"Bearer {app.token()}"
        yield Api(app.client, app.store, app.reconciler, app.clock, app.tokens, app.busy_ports)


def _log(api: Api, filter_: str = DAY, select: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every entry, following nextLink, and the raw text of every page."""
    query = f"api-version=2015-04-01&$filter={quote(filter_)}"
    if select:
        query += f"&$select={quote(select)}"
    url: str | None = f"{LOG}?{query}"
    entries, pages = [], []
    while url:
        r = api.client.get(url)
        assert r.status_code == 200, r.text
        pages.append(r.text)
        entries += r.json()["value"]
        url = r.json().get("nextLink")
    return entries, pages


def _brief(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["operationName"]["value"].split("/", 1)[-1], e["status"]["value"]) for e in reversed(entries)]


def test_every_write_and_action_route_has_an_operation_name_and_no_read_has_one() -> None:
    for route in ROUTES:
        name = choose_operation_name(route.method, route.pattern)
        wanted = route.authenticated and route.method in ("PUT", "PATCH", "DELETE", "POST")
        assert (name is not None) == wanted, (route.method, "/".join(route.pattern), name)


def test_every_recorded_cache_operation_is_in_the_providers_operations_list(api: Api) -> None:
    r = api.call("GET", "/providers/Microsoft.Cache/operations")
    listed = {op["name"] for op in r.json()["value"]}
    recorded = {choose_operation_name(route.method, route.pattern) for route in ROUTES}
    missing = {n for n in recorded if n and n.startswith("Microsoft.Cache/")} - listed
    assert not missing


def test_writes_and_actions_are_recorded_with_caller_status_and_no_secret(api: Api) -> None:
    create_cluster(api)
    create_database(api)
    keys = api.call("POST", DATABASE + "/listKeys").json()
    regenerated = api.call("POST", DATABASE + "/regenerateKey", {"keyType": "Primary"}).json()
    api.call("POST", DATABASE + "/flush")  # the fake completes it before the API answers
    r = api.call("PUT", CLUSTER, {**CLUSTER_BODY, "sku": {"name": "Nope_X1"}})
    assert r.status_code == 400
    api.call("GET", DATABASE)  # a read: not recorded
    entries, pages = _log(api)
    assert len(pages) > 1, "the page size is 3: the entries come in pages"
    assert _brief(entries) == [
        ("subscriptions/resourceGroups/write", "Started"),
        ("subscriptions/resourceGroups/write", "Succeeded"),
        ("redisEnterprise/write", "Started"),
        ("redisEnterprise/write", "Accepted"),
        ("redisEnterprise/write", "Succeeded"),
        ("redisEnterprise/databases/write", "Started"),
        ("redisEnterprise/databases/write", "Accepted"),
        ("redisEnterprise/databases/write", "Succeeded"),
        ("redisEnterprise/databases/listKeys/action", "Started"),
        ("redisEnterprise/databases/listKeys/action", "Succeeded"),
        ("redisEnterprise/databases/regenerateKey/action", "Started"),
        ("redisEnterprise/databases/regenerateKey/action", "Succeeded"),
        ("redisEnterprise/databases/flush/action", "Started"),
        ("redisEnterprise/databases/flush/action", "Accepted"),
        ("redisEnterprise/databases/flush/action", "Succeeded"),
        ("redisEnterprise/write", "Started"),
        ("redisEnterprise/write", "Failed"),
    ]
    assert {e["caller"] for e in entries} == {"client"}
    assert {e["httpRequest"]["clientIpAddress"] for e in entries} == {"testclient"}
    list_keys = [e for e in entries if "listKeys" in e["operationName"]["value"]]
    assert {e["resourceId"] for e in list_keys} == {DATABASE}
    assert {e["resourceGroupName"] for e in list_keys} == {"rg1"}
    assert len({e["correlationId"] for e in list_keys}) == 1
    failed = entries[0]
    assert failed["level"] == "Error" and failed["subStatus"]["value"] == "BadRequest"
    assert json.loads(failed["properties"]["statusMessage"])["error"]["code"]
    text = "".join(pages)
    for secret in (*keys.values(), *regenerated.values(), "secret"):
        assert secret not in text
    assert api.client.headers["Authorization"].split()[1] not in text


def test_a_long_running_operation_records_its_end_with_the_request_correlation_id(api: Api) -> None:
    create_cluster(api)
    api.clock.advance(1)
    r = api.call("DELETE", CLUSTER, None)
    assert r.status_code == 202
    correlation = r.headers["x-ms-correlation-request-id"]
    entries, _ = _log(api, f"{DAY} and correlationId eq '{correlation}'")
    assert _brief(entries) == [("redisEnterprise/delete", "Started"), ("redisEnterprise/delete", "Accepted")]
    api.clock.advance(5)
    api.reconciler.settle()
    entries, _ = _log(api, f"{DAY} and correlationId eq '{correlation}'")
    assert _brief(entries)[-1] == ("redisEnterprise/delete", "Succeeded")
    operation = r.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[1]
    assert entries[0]["operationId"] == operation
    assert entries[0]["eventTimestamp"] == "2025-07-01T12:00:06.000000Z"


def test_the_callers_correlation_id_is_kept_and_echoed(api: Api) -> None:
    r = api.client.put(
        f"/subscriptions/{SUB}/resourcegroups/rg9?api-version=2024-03-01",
        json={"location": "eastus"},
        headers={"x-ms-correlation-request-id": "my-correlation-1"},
    )
    assert r.status_code == 201 and r.headers["x-ms-correlation-request-id"] == "my-correlation-1"
    entries, _ = _log(api, f"{DAY} and correlationId eq 'MY-CORRELATION-1' and resourceGroupName eq 'RG9'")
    assert [e["status"]["value"] for e in entries] == ["Succeeded", "Started"]
    # A read and an error answer carry one too, amr's own when the caller gave none (or a bad one).
    r = api.client.get(f"{LOG}?api-version=2015-04-01", headers={"x-ms-correlation-request-id": "a b"})
    assert r.status_code == 400 and len(r.headers["x-ms-correlation-request-id"]) == 36


def test_filters_and_select(api: Api) -> None:
    create_cluster(api)
    entries, _ = _log(api, f"{DAY} and resourceUri eq '{CLUSTER.lower()}' and status eq 'accepted'")
    assert _brief(entries) == [("redisEnterprise/write", "Accepted")]
    entries, _ = _log(api, f"{DAY} and resourceProvider eq 'Microsoft.Resources' and caller eq 'client'")
    assert {e["operationName"]["value"] for e in entries} == {
        "Microsoft.Resources/subscriptions/resourceGroups/write"
    }
    entries, _ = _log(
        api, "eventTimestamp ge '2025-07-01T13:00:00Z' and eventTimestamp le '2025-07-02T00:00:00Z'"
    )
    assert entries == []
    entries, _ = _log(api, select="status,operationName,caller")
    assert entries and all(set(e) == {"status", "operationName", "caller"} for e in entries)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("api-version=2015-04-01", "$filter parameter is required"),
        ("api-version=2015-04-01&$filter=" + quote("eventTimestamp ge 'soon'"), "ISO 8601"),
        ("api-version=2015-04-01&$filter=" + quote(DAY + " and level eq 'Error'"), "'level' is not one"),
        ("api-version=2015-04-01&$select=keys&$filter=" + quote(DAY), "'keys' is not"),
        ("api-version=2015-04-01&$skipToken=zzz&$filter=" + quote(DAY), "nextLink"),
        ("api-version=2025-07-01&$filter=" + quote(DAY), "2015-04-01"),
    ],
)
def test_a_bad_query_is_an_arm_400(api: Api, query: str, says: str) -> None:
    r = api.client.get(f"{LOG}?{query}")
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"]


def test_unauthenticated_and_unrouted_requests_are_not_recorded(api: Api) -> None:
    r = api.client.put(
        f"/subscriptions/{SUB}/resourcegroups/rg2?api-version=2024-03-01",
        json={"location": "eastus"},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 401
    assert api.call("PUT", f"/subscriptions/{SUB}/nothing/here").status_code == 404
    entries, _ = _log(api)
    assert entries == []
