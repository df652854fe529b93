"""Bad input against the real API: every refusal is a 4xx ARM error that says what to fix, and the
resources that exist are untouched afterwards (same GET bodies, same keys, the database still answers)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.integration.amr_service import AmrService, wait_until

CACHE_API = "2025-07-01"
GROUPS_API = "2024-03-01"
GROUP = "rg-validation"
CLUSTER = "amr-valid"
EMPTY_CLUSTER = "amr-nodb"  # a cache without a database, for database-create refusals

CLUSTER_BODY = {
    "location": "eastus",
    "sku": {"name": "Balanced_B0"},
    "tags": {"team": "qa"},
    "properties": {"publicNetworkAccess": "Enabled", "minimumTlsVersion": "1.2"},
}
DATABASE_PROPERTIES = {
    "clientProtocol": "Encrypted",
    "clusteringPolicy": "OSSCluster",
    "evictionPolicy": "VolatileLRU",
    "accessKeysAuthentication": "Enabled",
}


@dataclass
class Env:
    service: AmrService
    http: httpx.Client
    cluster: str  # path of the cluster with a database
    database: str  # path of its database
    empty_cluster: str  # path of the cluster without a database
    port: int

    def url(self, path: str, api: str | None = CACHE_API) -> str:
        return path if api is None else f"{path}?api-version={api}"

    def call(self, method: str, path: str, body: Any = None, api: str | None = CACHE_API) -> httpx.Response:
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        return self.http.request(method, self.url(path, api), content=content, headers=headers)

    def snapshot(self) -> tuple[Any, Any, Any]:
        cluster = self.call("GET", self.cluster)
        database = self.call("GET", self.database)
        keys = self.call("POST", self.database + "/listKeys")
        assert cluster.status_code == database.status_code == keys.status_code == 200
        return cluster.json(), database.json(), keys.json()

    def ping(self) -> bool:
        keys = self.call("POST", self.database + "/listKeys").json()
        client = redis.Redis(
            host="localhost",
            port=self.port,
            ssl=True,
            ssl_ca_certs=self.service.ca_file,
            password=keys["primaryKey"],
            socket_timeout=5,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()


def _wait_succeeded(env: Env, path: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = env.call("GET", path).json()
        state = body["properties"]["provisioningState"]
        assert state not in ("Failed", "Canceled"), body
        return body if state == "Succeeded" else None

    return wait_until(done, 60, 0.2, what=f"{path} to succeed")


@pytest.fixture(scope="module")
def env(amr_service: AmrService) -> Iterator[Env]:
    http = amr_service.http()
    sub = amr_service.subscription
    group = http.put(
        f"/subscriptions/{sub}/resourcegroups/{GROUP}?api-version={GROUPS_API}", json={"location": "eastus"}
    )
    assert group.status_code in (200, 201), group.text
    cluster = amr_service.cluster_path(GROUP, CLUSTER)
    e = Env(amr_service, http, cluster, cluster + "/databases/default", "", 0)
    for name in (CLUSTER, EMPTY_CLUSTER):
        created = e.call("PUT", amr_service.cluster_path(GROUP, name), CLUSTER_BODY)
        assert created.status_code == 201, created.text
    # A database may be created once its cache is (until then amr answers 409, as Azure does).
    _wait_succeeded(e, e.cluster)
    db = e.call("PUT", e.database, {"properties": DATABASE_PROPERTIES})
    assert db.status_code == 201, db.text
    e.empty_cluster = amr_service.cluster_path(GROUP, EMPTY_CLUSTER)
    _wait_succeeded(e, e.empty_cluster)
    e.port = _wait_succeeded(e, e.database)["properties"]["port"]
    assert wait_until(e.ping, 20, what="the database to answer PING")
    yield e


@pytest.fixture
def untouched(env: Env) -> Iterator[None]:
    """The existing cluster and database are exactly as before the test, and still serve."""
    before = env.snapshot()
    yield
    assert env.snapshot() == before
    assert env.ping()


def assert_arm_error(
    response: httpx.Response, status: int, code: str | None, *mentions: str
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and len(error["message"]) > 20, body
    if code is not None:
        assert error["code"] == code, body
    for text in mentions:
        assert text.lower() in error["message"].lower(), body
    assert "Traceback" not in response.text
    return error


# --- bad bodies -------------------------------------------------------------------------------------

# (target, method, body, code, words the message must contain). Targets: "cluster", "database",
# "new-cluster" (a name that does not exist), "new-database" (the cache without a database).
BAD_BODIES: list[tuple[str, str, str, Any, str, tuple[str, ...]]] = [
    ("malformed-json", "cluster", "PUT", b'{"location": "eastus",', "InvalidRequestContent", ("JSON",)),
    ("malformed-json-db", "database", "PATCH", b"{not json}", "InvalidRequestContent", ("JSON",)),
    ("json-array", "cluster", "PUT", [CLUSTER_BODY], "InvalidRequestContent", ("object",)),
    ("json-array-db", "database", "PUT", [{"properties": {}}], "InvalidRequestContent", ("object",)),
    ("sku-string", "cluster", "PUT", {**CLUSTER_BODY, "sku": "Balanced_B0"}, "InvalidParameter", ("sku",)),
    ("sku-string-new", "new-cluster", "PUT", {**CLUSTER_BODY, "sku": "Balanced_B0"}, "InvalidParameter",
     ("sku", "object")),
    ("port-string", "database", "PATCH", {"properties": {"port": "10000"}}, "InvalidParameter",
     ("properties.port", "integer")),
    ("ha-number", "cluster", "PATCH", {"properties": {"highAvailability": 1}}, "InvalidParameter",
     ("highAvailability",)),
    ("tag-number", "cluster", "PATCH", {"tags": {"team": 7}}, "InvalidParameter", ("tags.team", "string")),
    ("client-protocol-foo", "database", "PATCH", {"properties": {"clientProtocol": "Foo"}}, "InvalidParameter",
     ("Foo", "clientProtocol", "Encrypted", "Plaintext")),
    ("eviction-bar", "database", "PATCH", {"properties": {"evictionPolicy": "Bar"}}, "InvalidParameter",
     ("Bar", "evictionPolicy", "AllKeysLRU")),
    ("sku-b7", "new-cluster", "PUT", {**CLUSTER_BODY, "sku": {"name": "Balanced_B7"}}, "InvalidParameter",
     ("Balanced_B7", "Balanced_B5")),
    ("sku-b7-patch", "cluster", "PATCH", {"sku": {"name": "Balanced_B7"}}, "InvalidParameter", ("Balanced_B7",)),
    ("tls-1.0", "cluster", "PATCH", {"properties": {"minimumTlsVersion": "1.0"}}, "InvalidParameter",
     ("minimumTlsVersion", "1.2")),
    ("tls-1.0-new", "new-cluster", "PUT",
     {**CLUSTER_BODY, "properties": {"publicNetworkAccess": "Enabled", "minimumTlsVersion": "1.0"}},
     "InvalidParameter", ("1.2",)),
    ("flash-sku", "new-cluster", "PUT", {**CLUSTER_BODY, "sku": {"name": "FlashOptimized_A250"}},
     "InvalidParameter", ("FlashOptimized",)),
    ("flash-sku-patch", "cluster", "PATCH", {"sku": {"name": "FlashOptimized_A250"}}, "InvalidParameter",
     ("FlashOptimized",)),
    ("no-public-network-access", "new-cluster", "PUT", {**CLUSTER_BODY, "properties": {}}, "InvalidParameter",
     ("publicNetworkAccess", "Enabled", "Disabled")),
    ("port-change", "database", "PATCH", {"properties": {"port": "__other_port__"}}, "InvalidParameter",
     ("port", "cannot be changed")),
    ("port-change-put", "database", "PUT", {"properties": {**DATABASE_PROPERTIES, "port": "__other_port__"}},
     "InvalidParameter", ("port",)),
    ("oss-to-enterprise", "database", "PATCH", {"properties": {"clusteringPolicy": "EnterpriseCluster"}},
     "InvalidParameter", ("clusteringPolicy", "OSSCluster")),
    ("ha-disable", "cluster", "PATCH", {"properties": {"highAvailability": "Disabled"}}, "InvalidParameter",
     ("highAvailability", "Disabled")),
    ("ha-disable-put", "cluster", "PUT",
     {**CLUSTER_BODY, "properties": {**CLUSTER_BODY["properties"], "highAvailability": "Disabled"}},
     "InvalidParameter", ("highAvailability",)),
    ("modules-on-create", "new-database", "PUT",
     {"properties": {**DATABASE_PROPERTIES, "modules": [{"name": "RediSearch"}]}}, "NotSupported",
     ("RediSearch", "modules")),
    ("geo-on-create", "new-database", "PUT",
     {"properties": {**DATABASE_PROPERTIES, "geoReplication": {"groupNickname": "g", "linkedDatabases": []}}},
     "NotSupported", ("geoReplication",)),
    ("modules-on-existing", "database", "PATCH", {"properties": {"modules": [{"name": "RedisJSON"}]}},
     "InvalidParameter", ("modules",)),
    ("aof-and-rdb", "database", "PATCH", {"properties": {"persistence": {"aofEnabled": True, "rdbEnabled": True}}},
     "InvalidParameter", ("aofEnabled", "rdbEnabled")),
    ("aof-and-rdb-create", "new-database", "PUT",
     {"properties": {**DATABASE_PROPERTIES, "persistence": {"aofEnabled": True, "rdbEnabled": True}}},
     "InvalidParameter", ("aofEnabled", "rdbEnabled")),
    ("empty-body", "cluster", "PUT", b"", "InvalidRequestContent", ("empty",)),
    ("invalid-utf8", "database", "PATCH", b'{"properties": "\xff\xfe"}', "InvalidRequestContent", ("JSON",)),
    ("deeply-nested", "cluster", "PATCH", b"[" * 100_000, "InvalidRequestContent", ("JSON",)),
    ("json-null", "database", "PATCH", b"null", "InvalidRequestContent", ("object",)),
    ("properties-array", "database", "PATCH", {"properties": []}, "InvalidParameter", ("properties", "object")),
    ("tags-array", "cluster", "PATCH", {"tags": ["a"]}, "InvalidParameter", ("tags", "object")),
    ("sku-name-number", "cluster", "PATCH", {"sku": {"name": 5}}, "InvalidParameter", ("sku.name", "string")),
    ("no-sku", "new-cluster", "PUT", {k: v for k, v in CLUSTER_BODY.items() if k != "sku"}, "InvalidParameter",
     ("sku.name", "required")),
    ("legacy-sku", "new-cluster", "PUT", {**CLUSTER_BODY, "sku": {"name": "Enterprise_E10"}}, "InvalidParameter",
     ("Enterprise_E10", "Balanced_")),
    ("location-change", "cluster", "PUT", {**CLUSTER_BODY, "location": "westus"}, "InvalidParameter",
     ("location", "eastus")),
    ("port-float", "database", "PATCH", {"properties": {"port": 10000.5}}, "InvalidParameter", ("integer",)),
    ("aof-frequency", "database", "PATCH", {"properties": {"persistence": {"aofEnabled": True,
     "aofFrequency": "2s"}}}, "InvalidParameter", ("2s", "aofFrequency", "always")),
    ("aof-enabled-string", "database", "PATCH", {"properties": {"persistence": {"aofEnabled": "yes"}}},
     "InvalidParameter", ("aofEnabled", "true or false")),
    ("nocluster-change", "database", "PATCH", {"properties": {"clusteringPolicy": "NoCluster"}},
     "InvalidParameter", ("clusteringPolicy",)),
    ("port-out-of-range", "new-database", "PUT", {"properties": {**DATABASE_PROPERTIES, "port": 1}},
     "InvalidParameter", ("port 1", "range")),
    ("identity", "new-cluster", "PUT", {**CLUSTER_BODY, "identity": {"type": "SystemAssigned"}},
     "InvalidParameter", ("identity",)),
    ("no-location", "new-cluster", "PUT", {k: v for k, v in CLUSTER_BODY.items() if k != "location"},
     "InvalidParameter", ("location",)),
]  # fmt: skip


def _replace_port(body: Any, port: int) -> Any:
    if isinstance(body, dict):
        return {k: _replace_port(v, port) for k, v in body.items()}
    return port + 1 if body == "__other_port__" else body


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(("target", "method", "body", "code", "mentions"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES])  # fmt: skip
def test_bad_body_is_refused_and_changes_nothing(
    env: Env, target: str, method: str, body: Any, code: str, mentions: tuple[str, ...]
) -> None:
    path = {
        "cluster": env.cluster,
        "database": env.database,
        "new-cluster": env.service.cluster_path(GROUP, "amr-never"),
        "new-database": env.empty_cluster + "/databases/default",
    }[target]
    response = env.call(method, path, _replace_port(body, env.port))
    assert "Azure-AsyncOperation" not in response.headers
    assert_arm_error(response, 400, code, *mentions)
    if target.startswith("new-"):
        assert_arm_error(env.call("GET", path), 404, "ResourceNotFound")


# --- bad names ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("name", ["-bad", "a--b", "bad-", "x" * 61, "bad_name"])
def test_bad_cluster_name_is_refused(env: Env, name: str) -> None:
    path = env.service.cluster_path(GROUP, name)
    error = assert_arm_error(env.call("PUT", path, CLUSTER_BODY), 400, "InvalidParameter", name, "hyphen")
    assert "60" in error["message"]
    assert env.call("GET", path).status_code == 404


def test_name_of_61_characters_is_refused_but_60_is_valid_syntax(env: Env) -> None:
    # 60 characters pass the name rule and then fail on the body, proving the limit is exactly 60.
    path = env.service.cluster_path(GROUP, "x" * 60)
    assert_arm_error(env.call("PUT", path, {**CLUSTER_BODY, "sku": "bad"}), 400, "InvalidParameter", "sku")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("name", ["db1", "Default2", "other"])
def test_database_name_other_than_default_is_refused(env: Env, name: str) -> None:
    path = env.cluster + f"/databases/{name}"
    body = {"properties": DATABASE_PROPERTIES}
    assert_arm_error(env.call("PUT", path, body), 400, "InvalidParameter", name, "default")
    assert_arm_error(env.call("PUT", env.empty_cluster + f"/databases/{name}", body), 400, "InvalidParameter")
    assert env.call("GET", env.empty_cluster + "/databases/default").status_code == 404


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("name", ["rg!bad", "rg*bad", "ends-with-dot.", "x" * 91])
def test_bad_resource_group_name_is_refused(env: Env, name: str) -> None:
    path = f"/subscriptions/{env.service.subscription}/resourcegroups/{name}"
    response = env.call("PUT", path, {"location": "eastus"}, api=GROUPS_API)
    assert_arm_error(response, 400, "InvalidResourceGroupName", "1-90")
    assert env.call("GET", path, api=GROUPS_API).status_code == 404


# --- api-version, auth, paths -------------------------------------------------------------------


@pytest.mark.usefixtures("untouched")
def test_database_port_taken_is_409_and_creates_nothing(env: Env) -> None:
    path = env.empty_cluster + "/databases/default"
    response = env.call("PUT", path, {"properties": {**DATABASE_PROPERTIES, "port": env.port}})
    assert_arm_error(response, 409, "PortInUse", str(env.port))
    assert_arm_error(env.call("GET", path), 404, "ResourceNotFound")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    ("body", "mention"),
    [(b"", "empty"), ({}, "keyType"), ({"keyType": "Tertiary"}, "Secondary"), ({"keyType": 1}, "keyType"),
     ([{"keyType": "Primary"}], "object")],
)  # fmt: skip
def test_bad_regenerate_key_body_keeps_keys(env: Env, body: Any, mention: str) -> None:
    assert_arm_error(env.call("POST", env.database + "/regenerateKey", body), 400, None, mention)


@pytest.mark.usefixtures("untouched")
def test_unknown_api_version_lists_supported_ones(env: Env) -> None:
    error = assert_arm_error(
        env.call("GET", env.cluster, api="2099-01-01"), 400, "InvalidApiVersionParameter"
    )
    assert "2099-01-01" in error["message"] and CACHE_API in error["message"]
    put = env.call("PUT", env.cluster, {**CLUSTER_BODY, "tags": {}}, api="1999-01-01")
    assert_arm_error(put, 400, "InvalidApiVersionParameter", CACHE_API)
    # Resource groups have their own versions: a cache version is not one of them.
    group = f"/subscriptions/{env.service.subscription}/resourcegroups/{GROUP}"
    assert_arm_error(env.call("GET", group, api=CACHE_API), 400, "InvalidApiVersionParameter", GROUPS_API)


@pytest.mark.usefixtures("untouched")
def test_missing_api_version_is_refused(env: Env) -> None:
    assert_arm_error(env.call("GET", env.cluster, api=None), 400, "MissingApiVersionParameter", "api-version")
    assert_arm_error(env.call("PATCH", env.cluster, {"tags": {}}, api=None), 400, None, "api-version")
    assert_arm_error(env.call("GET", env.cluster, api=""), 400, None, "api-version")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer", "bearer eyJ.eyJ.sig"],
)
def test_missing_or_garbage_token_is_401(env: Env, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(
        base_url=env.service.base_url,
        verify=ssl.create_default_context(cafile=env.service.ca_file),
        headers=headers,
    ) as anon:
        for method, body in (("GET", None), ("DELETE", None), ("PATCH", {"tags": {"x": "y"}})):
            response = anon.request(method, env.url(env.cluster), json=body)
            assert_arm_error(response, 401, None)
        assert_arm_error(anon.post(env.url(env.database + "/listKeys")), 401, None)


def test_token_signed_with_another_key_is_401(env: Env) -> None:
    token = env.service.token()
    header, body, _ = token.split(".")
    forged = f"{header}.{body}.{'A' * 43}"
    with httpx.Client(
        base_url=env.service.base_url, verify=ssl.create_default_context(cafile=env.service.ca_file)
    ) as anon:
        response = anon.get(env.url(env.cluster), headers={"Authorization": f"Bearer {forged}"})
    assert_arm_error(response, 401, "InvalidAuthenticationToken")


@pytest.mark.usefixtures("untouched")
def test_unknown_subscription_is_404(env: Env) -> None:
    other = env.cluster.replace(env.service.subscription, "00000000-0000-0000-0000-000000000000")
    assert_arm_error(env.call("GET", other), 404, "SubscriptionNotFound", env.service.subscription)
    assert_arm_error(env.call("PUT", other, CLUSTER_BODY), 404, "SubscriptionNotFound")
    assert_arm_error(env.call("DELETE", other), 404, "SubscriptionNotFound")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nothing/here",
        "/subscriptions/any/unknownThing",
        "/providers/Microsoft.Cache/unknownThing",
        "{cluster}/unknownChild",
        "{cluster}/databases/default/unknownAction",
        "{cluster}/databases/default/listKeys/extra",
    ],
)
def test_unknown_path_is_404_in_arm_shape(env: Env, path: str) -> None:
    path = path.replace("{cluster}", env.cluster)
    assert_arm_error(env.call("GET", path), 404, None, "url")
    assert_arm_error(env.call("POST", path), 404, None)


@pytest.mark.usefixtures("untouched")
def test_wrong_method_on_known_path_is_arm_error(env: Env) -> None:
    assert_arm_error(env.call("POST", env.cluster), 405, "MethodNotAllowed", "POST")
    assert_arm_error(env.call("GET", env.database + "/listKeys"), 405, "MethodNotAllowed")


@pytest.mark.usefixtures("untouched")
def test_missing_resources_are_404_resource_not_found(env: Env) -> None:
    missing = env.service.cluster_path(GROUP, "amr-missing")
    assert_arm_error(env.call("GET", missing), 404, "ResourceNotFound", "amr-missing")
    assert_arm_error(env.call("GET", missing + "/databases/default"), 404, "ResourceNotFound")
    assert_arm_error(env.call("PATCH", missing, {"tags": {}}), 404, "ResourceNotFound")
    assert_arm_error(env.call("POST", missing + "/databases/default/listKeys"), 404, "ResourceNotFound")
    assert_arm_error(env.call("GET", env.empty_cluster + "/databases/default"), 404, "ResourceNotFound")
    no_group = env.service.cluster_path("rg-missing", CLUSTER)
    assert_arm_error(env.call("GET", no_group), 404, "ResourceGroupNotFound", "rg-missing")
    assert_arm_error(env.call("PUT", no_group, CLUSTER_BODY), 404, "ResourceGroupNotFound")


# --- requests that are accepted -------------------------------------------------------------------


@pytest.mark.usefixtures("untouched")
def test_put_repeating_current_state_is_200_without_operation(env: Env) -> None:
    cluster = env.call("PUT", env.cluster, CLUSTER_BODY)
    assert cluster.status_code == 200, cluster.text
    assert "Azure-AsyncOperation" not in cluster.headers
    assert cluster.json()["properties"]["provisioningState"] == "Succeeded"
    database = env.call("PUT", env.database, {"properties": {**DATABASE_PROPERTIES, "port": env.port}})
    assert database.status_code == 200, database.text
    assert "Azure-AsyncOperation" not in database.headers
    assert database.json()["properties"]["provisioningState"] == "Succeeded"
    # ARM names are case-insensitive: the same cluster under other casing is the same state.
    path = env.service.cluster_path(GROUP.upper(), CLUSTER.upper())
    again = env.call("PUT", path, CLUSTER_BODY)
    assert again.status_code == 200, again.text
    assert "Azure-AsyncOperation" not in again.headers


@pytest.mark.usefixtures("untouched")
def test_unknown_properties_are_ignored(env: Env) -> None:
    body = {
        **CLUSTER_BODY,
        "somethingNew": {"nested": [1, 2]},
        "properties": {**CLUSTER_BODY["properties"], "futureProperty": "x", "anotherOne": 3},
    }
    cluster = env.call("PUT", env.cluster, body)
    assert cluster.status_code == 200, cluster.text
    assert "futureProperty" not in cluster.json()["properties"]
    db_body = {"properties": {**DATABASE_PROPERTIES, "notifyKeyspaceEventsX": "KEA", "shinyNew": True}}
    database = env.call("PUT", env.database, db_body)
    assert database.status_code == 200, database.text
    assert "Azure-AsyncOperation" not in database.headers


def test_operations_list(env: Env) -> None:
    response = env.call("GET", "/providers/Microsoft.Cache/operations")
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert isinstance(value, list) and value
    names = {op["name"] for op in value}
    assert "Microsoft.Cache/redisEnterprise/read" in names
    assert all({"name", "display"} <= set(op) for op in value)
    assert_arm_error(env.call("GET", "/providers/Microsoft.Cache/operations", api=None), 400, None)


def test_patch_eviction_policy_is_a_long_running_operation(env: Env) -> None:
    """Runs last on purpose: it changes the database the other tests compare against."""
    keys = env.call("POST", env.database + "/listKeys").json()
    response = env.call("PATCH", env.database, {"properties": {"evictionPolicy": "AllKeysLRU"}})
    assert response.status_code == 202, response.text
    assert response.headers["Retry-After"] == "1"
    status_url = response.headers["Azure-AsyncOperation"]
    assert "/operationsStatus/" in status_url and f"api-version={CACHE_API}" in status_url
    assert "/operationResults/" in response.headers["Location"]

    def finished() -> Any:
        status = env.http.get(status_url)
        assert status.status_code == 200, status.text
        assert status.json()["status"] in ("Succeeded", "InProgress", "Pending"), status.text
        return status if status.json()["status"] == "Succeeded" else None

    status = wait_until(finished, 30, interval=0.2, what="the operation to succeed")
    assert status.json()["name"] in status_url
    result = env.http.get(response.headers["Location"])
    assert result.status_code in (200, 204), result.text

    database = env.call("GET", env.database).json()
    assert database["properties"]["evictionPolicy"] == "AllKeysLRU"
    assert database["properties"]["provisioningState"] == "Succeeded"
    assert database["properties"]["port"] == env.port
    assert env.call("POST", env.database + "/listKeys").json() == keys
    assert env.ping()
    client = redis.Redis(
        host="localhost",
        port=env.port,
        ssl=True,
        ssl_ca_certs=env.service.ca_file,
        password=keys["primaryKey"],
    )
    try:
        # The node runs with the new policy (CONFIG is denied to users; INFO shows it).
        assert wait_until(lambda: client.info("memory")["maxmemory_policy"] == "allkeys-lru", 10)
    finally:
        client.close()
