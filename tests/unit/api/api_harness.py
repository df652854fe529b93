"""The ARM API in process for the API tests: create_app over a SqlStore on a temp file, the
FakeReconciler and a FakeClock, called through Starlette's TestClient (the ``api`` fixture is in
conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from amr.api.auth import TokenService
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.reconciler import FakeReconciler

SUB = "11111111-2222-3333-4444-555555555555"


TENANT = "tenant-1"


API = "api-version=2025-07-01"


GROUPS_API = "api-version=2024-03-01"


CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Cache/redisEnterprise/cache1"


DATABASE = CLUSTER + "/databases/default"


MAX_BODY = 64 * 1024


TOKEN_FORM = (
    "grant_type=client_credentials&client_id=client&client_secret=secret"
    "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
)


CLUSTER_BODY = {
    "location": "eastus",
    "sku": {"name": "Balanced_B1"},
    "properties": {"publicNetworkAccess": "Enabled"},
}


@dataclass
class Api:
    """The app's client (authenticated) and the fakes behind it."""

    client: TestClient
    store: SqlStore
    reconciler: FakeReconciler
    clock: FakeClock
    tokens: TokenService
    busy_ports: set[int]

    def call(self, method: str, path: str, body: Any = None, query: str = API) -> Any:
        content = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        sep = "&" if "?" in path else "?"
        return self.client.request(method, f"{path}{sep}{query}" if query else path, content=content)


def create_cluster(api: Api, body: dict[str, Any] | None = None) -> None:
    r = api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    assert r.status_code in (200, 201), r.text
    r = api.call("PUT", CLUSTER, body or CLUSTER_BODY)
    assert r.status_code == 201, r.text
    api.reconciler.settle()


def create_database(api: Api, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    r = api.call("PUT", DATABASE, {"properties": properties or {"accessKeysAuthentication": "Enabled"}})
    assert r.status_code == 201, r.text
    api.reconciler.settle()
    return api.call("GET", DATABASE).json()


def poll(api: Api, url: str) -> dict[str, Any]:
    r = api.client.get(url)
    assert r.status_code == 200, r.text
    return r.json()
