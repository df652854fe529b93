"""The activity log of a real amr over HTTPS: a cache created, its keys listed and regenerated and the
cache deleted with the official azure-mgmt-redisenterprise SDK, then read back with azure-mgmt-monitor's
``activity_logs.list`` unchanged and with ``amr monitor activity-log list``. Each call's entries name
the principal that made it, its operation, its statuses and its correlation id; no key is anywhere
in the log, neither in its rows in the store nor in what the API or the CLI answer."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import EventData
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import Cluster, Database, RegenerateKeyParameters, Sku

from tests.integration.amr_service import AmrService

GROUP = "rg-activity"
CACHE = "activity-cache"
CORRELATION = "5f0c1a2e-activity-test-0001"
PAGE = 4  # entries per page: the log below spans several, so the SDK follows nextLink


@dataclass
class Clients:
    service: AmrService
    caches: RedisEnterpriseManagementClient
    monitor: MonitorManagementClient
    since: datetime
    bodies: list[str] = field(default_factory=list)  # every activity log response the SDK read


@dataclass
class Story:
    """What the calls did: their correlation ids and every key the database ever had."""

    create: str
    list_keys: str
    regenerate: str
    flush: str
    delete: str
    keys: set[str]


@pytest.fixture(scope="module")
def clients() -> Iterator[Clients]:
    service = AmrService({"AMR_API_ACTIVITY_LOG_PAGE_SIZE": str(PAGE)}).start()
    try:
        creds = service.credentials
        credential = ClientSecretCredential(
            creds["tenantId"],
            creds["clientId"],
            creds["clientSecret"],
            authority=service.base_url,
            disable_instance_discovery=True,
            connection_verify=service.ca_file,
        )
        common: dict[str, Any] = {"base_url": service.base_url, "connection_verify": service.ca_file}
        caches = RedisEnterpriseManagementClient(credential, service.subscription, **common)
        monitor = MonitorManagementClient(credential, service.subscription, **common)
        service.amr("group", "create", "-n", GROUP, "-l", "westus2", check=True)
        yield Clients(service, caches, monitor, datetime.now(UTC) - timedelta(minutes=5))
        caches.close()
        monitor.close()
    finally:
        service.destroy()


def _correlation_of(sink: list[str]) -> Any:
    """A raw_response_hook keeping the correlation id amr answered with."""
    return lambda response: sink.append(response.http_response.headers["x-ms-correlation-request-id"])


@pytest.fixture(scope="module")
def story(clients: Clients) -> Story:
    c = clients.caches
    seen: dict[str, list[str]] = {"create": [], "list": [], "regen": [], "flush": [], "delete": []}
    c.redis_enterprise.begin_create(
        GROUP,
        CACHE,
        Cluster(location="westus2", sku=Sku(name="Balanced_B0"), public_network_access="Enabled"),
        headers={"x-ms-correlation-request-id": CORRELATION},
        raw_response_hook=_correlation_of(seen["create"]),
    ).result()
    c.databases.begin_create(GROUP, CACHE, "default", Database(access_keys_authentication="Enabled")).result()
    keys = c.databases.list_keys(GROUP, CACHE, "default", raw_response_hook=_correlation_of(seen["list"]))
    new = c.databases.begin_regenerate_key(
        GROUP,
        CACHE,
        "default",
        RegenerateKeyParameters(key_type="Primary"),
        raw_response_hook=_correlation_of(seen["regen"]),
    ).result()
    c.databases.begin_flush(
        GROUP, CACHE, "default", raw_response_hook=_correlation_of(seen["flush"])
    ).result()
    c.redis_enterprise.begin_delete(GROUP, CACHE, raw_response_hook=_correlation_of(seen["delete"])).result()
    return Story(
        create=seen["create"][0],
        list_keys=seen["list"][0],
        regenerate=seen["regen"][0],
        flush=seen["flush"][0],
        delete=seen["delete"][0],
        keys={keys.primary_key, keys.secondary_key, new.primary_key, new.secondary_key},
    )


def _log(clients: Clients, conditions: str = "", select: str | None = None) -> list[EventData]:
    start = clients.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"eventTimestamp ge '{start}'" + (f" and {conditions}" if conditions else "")

    def keep(response: Any) -> None:
        clients.bodies.append(response.http_response.text())

    return list(clients.monitor.activity_logs.list(filter=text, select=select, raw_response_hook=keep))


def _statuses(entries: list[EventData], operation: str) -> list[str]:
    """The statuses of one operation's entries, oldest first."""
    return [e.status.value for e in reversed(entries) if e.operation_name.value == operation]


def test_each_call_is_recorded_with_its_caller_operation_statuses_and_correlation(
    clients: Clients, story: Story
) -> None:
    client_id = clients.service.credentials["clientId"]
    entries = _log(clients, f"resourceGroupName eq '{GROUP}'")
    assert len(entries) > PAGE, "the SDK followed nextLink across pages"
    assert {e.caller for e in entries} == {client_id}
    assert {e.claims["appid"] for e in entries} == {client_id}
    assert {e.http_request.client_ip_address for e in entries} == {"127.0.0.1"}
    assert {e.subscription_id for e in entries} == {clients.service.subscription}
    assert [e.event_timestamp for e in entries] == sorted((e.event_timestamp for e in entries), reverse=True)

    # listKeys: who called it, from which principal, on which database, under which correlation.
    list_keys = [e for e in entries if e.correlation_id == story.list_keys]
    assert [e.status.value for e in reversed(list_keys)] == ["Started", "Succeeded"]
    assert {e.operation_name.value for e in list_keys} == {
        "Microsoft.Cache/redisEnterprise/databases/listKeys/action"
    }
    assert {e.resource_id.lower() for e in list_keys} == {
        f"{clients.service.cluster_path(GROUP, CACHE)}/databases/default".lower()
    }
    assert list_keys[0].sub_status.value == "OK" and list_keys[0].http_request.method == "POST"

    regenerate = [e for e in entries if e.correlation_id == story.regenerate]
    assert _statuses(regenerate, "Microsoft.Cache/redisEnterprise/databases/regenerateKey/action") == [
        "Started",
        "Succeeded",
    ]
    # A long-running create, flush and delete: Started, Accepted when the API answered, Succeeded when the
    # operation ended, all under the request's correlation id (the caller's own for the create).
    assert story.create == CORRELATION
    create = [e for e in entries if e.correlation_id == CORRELATION]
    assert _statuses(create, "Microsoft.Cache/redisEnterprise/write") == ["Started", "Accepted", "Succeeded"]
    flush = [e for e in entries if e.correlation_id == story.flush]
    assert _statuses(flush, "Microsoft.Cache/redisEnterprise/databases/flush/action") == [
        "Started",
        "Accepted",
        "Succeeded",
    ]
    delete = [e for e in entries if e.correlation_id == story.delete]
    assert _statuses(delete, "Microsoft.Cache/redisEnterprise/delete") == ["Started", "Accepted", "Succeeded"]
    database = _statuses(entries, "Microsoft.Cache/redisEnterprise/databases/write")
    assert database == ["Started", "Accepted", "Succeeded"]


def test_filters_and_select_through_the_sdk(clients: Clients, story: Story) -> None:
    by_correlation = _log(clients, f"correlationId eq '{story.list_keys}'")
    assert len(by_correlation) == 2
    failed = _log(clients, "status eq 'Failed'")
    assert failed == []
    selected = _log(clients, f"correlationId eq '{CORRELATION}'", select="caller,status,operationName")
    assert [e.status.value for e in selected] == ["Succeeded", "Accepted", "Started"]
    assert all(e.event_data_id is None and e.claims is None and e.caller for e in selected)


def test_a_bad_filter_is_an_arm_400_that_says_what_to_fix(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as e:
        list(clients.monitor.activity_logs.list(filter="eventTimestamp ge 'last tuesday'"))
    assert e.value.status_code == 400
    assert "is not an ISO 8601 time" in str(e.value.message)
    with pytest.raises(HttpResponseError) as e:
        list(clients.monitor.activity_logs.list(filter=f"resourceGroupName eq '{GROUP}'"))
    assert e.value.status_code == 400 and "start time" in str(e.value.message)


def test_the_cli_lists_the_log_as_az_does(clients: Clients, story: Story) -> None:
    service = clients.service
    out = service.amr_json("monitor", "activity-log", "list", "--correlation-id", story.list_keys)
    assert [e["status"]["value"] for e in out] == ["Succeeded", "Started"]
    table = service.amr(
        "monitor", "activity-log", "list", "-g", GROUP, "--offset", "1h", "-o", "table", check=True
    )
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["Time", "Status", "Operation"]
    assert any("databases/listKeys/action" in line and story.list_keys in line for line in lines)
    clients.bodies.append(json.dumps(out) + table.stdout)


def test_no_key_is_anywhere_in_the_log(clients: Clients, story: Story) -> None:
    """Last in the module: it reads every response the tests above received, and the rows themselves."""
    _log(clients)
    secret = clients.service.credentials["clientSecret"]
    with sqlite3.connect(clients.service.home / "amr.db") as db:
        rows = [" ".join(map(str, row)) for row in db.execute("select * from activity_log")]
    assert len(rows) >= 17
    for text in (*rows, *clients.bodies):
        for key in (*story.keys, secret):
            assert key not in text
