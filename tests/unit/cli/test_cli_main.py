"""The amr CLI against an in-memory fake of the amr API (an httpx.MockTransport; no server, no sleeps):
the transport details the real API cannot be made to show. The CLI against the real API app is
test_cli_api.py."""

from __future__ import annotations

import io
import json
import re
import shlex
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from amr.cli.context import Context
from amr.cli.main import main
from amr.settings import load_settings

SUB = "00000000-0000-0000-0000-0000000000aa"
TENANT = "00000000-0000-0000-0000-0000000000bb"
CLIENT_ID = "00000000-0000-0000-0000-0000000000cc"
SECRET = "s3cret"
ENDPOINT = "https://localhost:8443"
LOCATIONS = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus"
PRIMARY_KEY = "pr1mary+key/with=chars;x"

RG_RE = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/?([^/]*)$", re.I)
CLUSTER_RE = re.compile(
    r"^/subscriptions/[^/]+(?:/resourceGroups/([^/]+))?/providers/Microsoft\.Cache/redisEnterprise/?([^/]*)"
    r"(?:/(databases|listSkusForScaling))?/?([^/]*)/?([^/]*)$",
    re.I,
)


def arm_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "target": None}})


class FakeArm:
    """Just enough of the amr API for the CLI: tokens, groups, clusters, databases, LROs."""

    def __init__(self, polls: int = 2) -> None:
        self.polls = polls
        self.groups: dict[str, dict[str, Any]] = {}
        self.clusters: dict[tuple[str, str], dict[str, Any]] = {}
        self.databases: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.token_requests = 0
        self.page_size = 1

    # -- helpers -------------------------------------------------------------------------------

    def _op(self, final: str = "Succeeded", error: dict[str, Any] | None = None, kind: str = "async") -> str:
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {"left": self.polls, "final": final, "error": error, "kind": kind}
        return op_id

    def _async_headers(self, op_id: str) -> dict[str, str]:
        url = f"{ENDPOINT}{LOCATIONS}/operationsStatus/{op_id}"
        return {"Azure-AsyncOperation": url + "?api-version=2025-07-01", "Retry-After": "10"}

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        skip = int(request.url.params.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": items[skip : skip + self.page_size]}
        if skip + self.page_size < len(items):
            body["nextLink"] = str(request.url.copy_set_param("$skiptoken", str(skip + self.page_size)))
        return httpx.Response(200, json=body)

    # -- transport -----------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == f"/{TENANT}/oauth2/v2.0/token":
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            assert form["scope"] == ["https://management.azure.com/.default"]
            if form["client_secret"] != [SECRET]:
                return httpx.Response(
                    401, json={"error": "invalid_client", "error_description": "bad secret"}
                )
            self.token_requests += 1
            return httpx.Response(
                200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"}
            )
        if request.headers.get("Authorization") != "Bearer tok-1":
            return arm_error(401, "AuthenticationFailed", "missing or bad bearer token")
        if "api-version" not in request.url.params:
            return arm_error(400, "MissingApiVersionParameter", "api-version is required")
        if "/operationsStatus/" in path:
            return self._poll(path.rsplit("/", 1)[1])
        if "/operationresults/" in path:
            return self._poll(path.rsplit("/", 1)[1])
        m = RG_RE.match(path)
        if m:
            assert request.url.params["api-version"] == "2024-03-01"
            return self._group(request, m.group(2))
        m = CLUSTER_RE.match(path)
        if m:
            assert request.url.params["api-version"] == "2025-07-01"
            return self._cluster(request, *m.groups())
        return arm_error(404, "NotFound", f"no route for {request.method} {path}")

    def _poll(self, op_id: str) -> httpx.Response:
        op = self.operations.get(op_id)
        if op is None:
            return arm_error(404, "NotFound", "no such operation")
        done = op["left"] <= 0
        op["left"] -= 1
        if op["kind"] == "location":
            return httpx.Response(200 if done else 202, json=None if not done else {})
        body: dict[str, Any] = {"id": op_id, "status": op["final"] if done else "InProgress"}
        if done and op["error"]:
            body["error"] = op["error"]
        return httpx.Response(200, json=body)

    def _group(self, request: httpx.Request, name: str) -> httpx.Response:
        if not name:
            return self._page(request, list(self.groups.values()))
        key = name.lower()
        if request.method == "PUT":
            body = json.loads(request.content)
            group = {
                "id": f"/subscriptions/{SUB}/resourceGroups/{name}",
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": body["location"],
                "tags": body.get("tags"),
                "properties": {"provisioningState": "Succeeded"},
            }
            status = 200 if key in self.groups else 201
            self.groups[key] = group
            return httpx.Response(status, json=group)
        if key not in self.groups:
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        if request.method == "GET":
            return httpx.Response(200, json=self.groups[key])
        if request.method == "DELETE":
            del self.groups[key]
            op_id = self._op(kind="location")
            loc = f"{ENDPOINT}/subscriptions/{SUB}/operationresults/{op_id}?api-version=2024-03-01"
            return httpx.Response(202, headers={"Location": loc})
        return arm_error(405, "MethodNotAllowed", request.method)

    def _cluster(
        self, request: httpx.Request, rg: str | None, name: str, sub: str | None, db: str, action: str
    ) -> httpx.Response:
        if not name:
            items = [c for (g, _), c in self.clusters.items() if rg is None or g == rg.lower()]
            return self._page(request, items)
        key = ((rg or "").lower(), name.lower())
        cluster_id = (
            f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Cache/redisEnterprise/{name}"
        )
        if sub == "databases":
            return self._database(request, key, cluster_id, db, action)
        if sub == "listSkusForScaling":
            return httpx.Response(200, json={"skus": [{"name": "Balanced_B10", "sizeInGB": 12}]})
        if request.method == "PUT":
            if (rg or "").lower() not in self.groups:
                return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            body = json.loads(request.content)
            if body["sku"]["name"] == "Bad_SKU":
                return arm_error(
                    400, "InvalidParameter", "The value 'Bad_SKU' of sku.name is not a valid SKU."
                )
            cluster = {
                "id": cluster_id,
                "name": name,
                "type": "Microsoft.Cache/redisEnterprise",
                "location": body["location"],
                "tags": body.get("tags") or {},
                "sku": body["sku"],
                "properties": {
                    **body.get("properties", {}),
                    "hostName": "localhost",
                    "provisioningState": "Creating",
                },
            }
            self.clusters[key] = cluster
            self.last_cluster_body = body
            if name == "failme":
                error = {"code": "ProvisioningFailed", "message": "valkey-server did not start"}
                op_id = self._op(final="Failed", error=error)
            else:
                op_id = self._op()
                cluster["properties"]["provisioningState"] = "Succeeded"  # visible after the LRO
            return httpx.Response(201, json=cluster, headers=self._async_headers(op_id))
        if key not in self.clusters:
            if request.method == "DELETE":
                return httpx.Response(204)
            return arm_error(404, "ResourceNotFound", f"The Resource '{name}' was not found.")
        cluster = self.clusters[key]
        if request.method == "GET":
            return httpx.Response(200, json=cluster)
        if request.method == "PATCH":
            body = json.loads(request.content)
            self.last_patch = body
            cluster["properties"].update(body.get("properties", {}))
            if "sku" in body:
                cluster["sku"] = body["sku"]
            if "tags" in body:
                cluster["tags"] = body["tags"]
            headers = self._async_headers(self._op())
            headers["Location"] = f"{ENDPOINT}{cluster_id}?api-version=2025-07-01"
            return httpx.Response(202, headers=headers)
        if request.method == "DELETE":
            del self.clusters[key]
            for k in [k for k in self.databases if k[:2] == key]:
                del self.databases[k]
            return httpx.Response(202, headers=self._async_headers(self._op()))
        return arm_error(405, "MethodNotAllowed", request.method)

    def _database(
        self, request: httpx.Request, key: tuple[str, str], cluster_id: str, db: str, action: str
    ) -> httpx.Response:
        if key not in self.clusters:
            return arm_error(404, "ResourceNotFound", f"The Resource '{key[1]}' was not found.")
        if not db:
            return self._page(request, [d for k, d in self.databases.items() if k[:2] == key])
        dkey = (*key, db)
        if request.method == "PUT" and not action:
            body = json.loads(request.content)
            self.last_db_body = body
            props = {"clientProtocol": "Encrypted", "port": 10000, "clusteringPolicy": "OSSCluster"}
            props.update(body.get("properties", {}))
            props.setdefault("accessKeysAuthentication", "Disabled")
            database = {
                "id": f"{cluster_id}/databases/{db}",
                "name": db,
                "type": "Microsoft.Cache/redisEnterprise/databases",
                "properties": {**props, "provisioningState": "Succeeded"},
            }
            self.databases[dkey] = database
            return httpx.Response(201, json=database, headers=self._async_headers(self._op()))
        if dkey not in self.databases:
            return arm_error(404, "ResourceNotFound", f"The Resource '{db}' was not found.")
        database = self.databases[dkey]
        if action == "listKeys":
            return httpx.Response(200, json={"primaryKey": PRIMARY_KEY, "secondaryKey": "second"})
        if action == "regenerateKey":
            assert json.loads(request.content) == {"keyType": "Secondary"}
            return httpx.Response(200, json={"primaryKey": PRIMARY_KEY, "secondaryKey": "second-2"})
        if action == "flush":
            op_id = self._op(kind="location")
            loc = f"{ENDPOINT}{LOCATIONS}/operationresults/{op_id}"
            return httpx.Response(202, headers={"Location": loc})
        if request.method == "GET":
            return httpx.Response(200, json=database)
        if request.method == "PATCH":
            body = json.loads(request.content)
            self.last_db_patch = body
            database["properties"].update(body["properties"])
            return httpx.Response(200, json=database)
        if request.method == "DELETE":
            del self.databases[dkey]
            return httpx.Response(202, headers=self._async_headers(self._op()))
        return arm_error(405, "MethodNotAllowed", request.method)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def home(tmp_path: Path) -> Path:
    creds = {
        "tenantId": TENANT,
        "subscriptionId": SUB,
        "clientId": CLIENT_ID,
        "clientSecret": SECRET,
        "managementEndpoint": ENDPOINT,
        "caFile": str(tmp_path / "pki" / "ca.pem"),
    }
    (tmp_path / "credentials.json").write_text(json.dumps(creds))
    return tmp_path


@pytest.fixture
def api() -> FakeArm:
    return FakeArm()


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        assert self.out, (self.code, self.err)
        return json.loads(self.out)


@pytest.fixture
def run(home: Path, api: FakeArm, capsys: pytest.CaptureFixture[str]):
    sleeps: list[float] = []

    def _run(*argv: str, stdin: io.StringIO | None = None, stderr: io.StringIO | None = None) -> Result:
        out = io.StringIO()
        err = stderr if stderr is not None else io.StringIO()
        ctx = Context(
            stdin=stdin if stdin is not None else io.StringIO(),
            stdout=out,
            stderr=err,
            settings_factory=lambda: load_settings(home=home, env={}),
            transport=httpx.MockTransport(api),
            poll_interval=0.25,
            sleep=sleeps.append,
        )
        code = main(list(argv), context=ctx)
        captured = capsys.readouterr()  # argparse writes usage errors to sys.stderr
        all_err = err.getvalue() + captured.err
        assert "Traceback" not in all_err and "Traceback" not in out.getvalue()
        return Result(code, out.getvalue() + captured.out, all_err)

    _run.sleeps = sleeps  # type: ignore[attr-defined]
    return _run


def create_cluster(run: Any, *extra: str) -> Result:
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


# -- groups ---------------------------------------------------------------------------------------


def test_group_create_show_list(run: Any, api: FakeArm) -> None:
    r = run("group", "create", "-n", "rg1", "-l", "westus", "--tags", "env=dev", "team")
    assert r.code == 0, r.err
    assert r.json()["tags"] == {"env": "dev", "team": ""}
    assert r.out.startswith('{\n  "id"')  # az-style: pretty, indent 2, sorted keys
    assert run("group", "create", "-n", "rg2", "-l", "eastus").code == 0
    assert run("group", "show", "-n", "rg1").json()["location"] == "westus"
    # Two pages (page size 1): nextLink is followed.
    assert [g["name"] for g in run("group", "list").json()] == ["rg1", "rg2"]
    # One token per process (cached in memory only, even across the two list pages), on every ARM call.
    assert api.token_requests == 4
    arm_calls = [q for q in api.requests if "oauth2" not in q.url.path]
    assert all(q.headers["Authorization"] == "Bearer tok-1" for q in arm_calls)


def test_group_delete_polls_location(run: Any, api: FakeArm) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1", "--yes")
    assert (r.code, r.out) == (0, "")
    polls = [q for q in api.requests if "/operationresults/" in q.url.path]
    assert len(polls) == api.polls + 1
    assert run.sleeps == [0.25] * api.polls  # Retry-After is ignored; the interval is injectable
    r = run("group", "show", "-n", "rg1")
    assert r.code == 1
    assert r.err == "ERROR: (ResourceGroupNotFound) Resource group 'rg1' could not be found.\n"


def test_group_delete_no_wait(run: Any, api: FakeArm) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1", "--yes", "--no-wait")
    assert (r.code, r.out) == (0, "")
    assert not [q for q in api.requests if "/operationresults/" in q.url.path]


def test_delete_without_yes_refuses_without_tty(run: Any, api: FakeArm) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("group", "delete", "-n", "rg1")
    assert r.code == 1
    assert "no tty available" in r.err and "--yes" in r.err
    assert "rg1" in api.groups


def test_delete_asks_on_a_tty(run: Any, api: FakeArm) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    err = Tty()
    r = run("group", "delete", "-n", "rg1", stdin=Tty("n\n"), stderr=err)
    assert r.code == 1 and "Are you sure you want to perform this operation? (y/n):" in r.err
    assert "rg1" in api.groups
    r = run("group", "delete", "-n", "rg1", stdin=Tty("y\n"), stderr=Tty())
    assert r.code == 0 and "rg1" not in api.groups


# -- clusters -------------------------------------------------------------------------------------


def test_create_cluster_with_database(run: Any, api: FakeArm) -> None:
    r = create_cluster(
        run,
        "--tags",
        "a=b",
        "--minimum-tls-version",
        "1.2",
        "--persistence",
        "aof-enabled=true",
        "aof-frequency=1s",
        "--modules",
        "name=RedisBloom",
        "args=ERROR_RATE 0.02",
        "--modules",
        "name=RediSearch",
        "--access-keys-authentication",
        "Enabled",
    )
    assert r.code == 0, r.err
    assert api.last_cluster_body == {
        "location": "westus",
        "sku": {"name": "Balanced_B5"},
        "tags": {"a": "b"},
        "properties": {"minimumTlsVersion": "1.2", "publicNetworkAccess": "Enabled"},
    }
    assert api.last_db_body == {
        "properties": {
            "persistence": {"aofEnabled": True, "aofFrequency": "1s"},
            "modules": [{"name": "RedisBloom", "args": "ERROR_RATE 0.02"}, {"name": "RediSearch"}],
            "accessKeysAuthentication": "Enabled",
        }
    }
    out = r.json()
    assert out["name"] == "cache1" and out["resourceGroup"] == "rg1"
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert [d["name"] for d in out["databases"]] == ["default"]
    assert out["databases"][0]["resourceGroup"] == "rg1"
    # Azure-AsyncOperation went InProgress -> Succeeded for both the cluster and the database.
    statuses = [q for q in api.requests if "/operationsStatus/" in q.url.path]
    assert len(statuses) == 2 * (api.polls + 1)
    assert r.err == ""  # stderr is not a tty: no progress


def test_progress_on_a_tty(run: Any) -> None:
    err = Tty()
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    r = run("redisenterprise", "create", "-n", "c", "-g", "rg1", "-l", "westus", "--sku", "B", stderr=err)
    assert r.code == 0
    assert " - Running ." in err.getvalue()


def test_create_no_database(run: Any, api: FakeArm) -> None:
    r = create_cluster(run, "--no-database", "--high-availability", "Disabled")
    assert r.code == 0, r.err
    assert r.json()["databases"] == []
    assert api.last_cluster_body["properties"]["highAvailability"] == "Disabled"
    r = run(
        "redisenterprise",
        "create",
        "-n",
        "c2",
        "-g",
        "rg1",
        "-l",
        "x",
        "--sku",
        "B",
        "--no-database",
        "--port",
        "1",
    )
    assert r.code == 2
    assert "usage:" in r.err and "--no-database conflicts" in r.err


def test_create_no_wait_prints_nothing(run: Any) -> None:
    r = create_cluster(run, "--no-wait", "--no-database")
    assert (r.code, r.out) == (0, "")


def test_failed_lro_prints_arm_error(run: Any) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("redisenterprise", "create", "-n", "failme", "-g", "rg1", "-l", "westus", "--sku", "Balanced_B5")
    assert r.code == 1
    assert r.err == "ERROR: (ProvisioningFailed) valkey-server did not start\n"
    assert r.out == ""


def test_arm_400_error(run: Any) -> None:
    run("group", "create", "-n", "rg1", "-l", "westus")
    r = run("redisenterprise", "create", "-n", "c1", "-g", "rg1", "-l", "westus", "--sku", "Bad_SKU")
    assert r.code == 1
    assert r.err == "ERROR: (InvalidParameter) The value 'Bad_SKU' of sku.name is not a valid SKU.\n"


def test_show_list_and_query(run: Any) -> None:
    create_cluster(run)
    r = run("redisenterprise", "show", "-n", "cache1", "-g", "rg1")
    assert r.json()["databases"][0]["properties"]["port"] == 10000
    r = run("redisenterprise", "list", "--query", "[].{name:name, rg:resourceGroup}", "-o", "tsv")
    assert r.out == "cache1\trg1\n"
    r = run("redisenterprise", "list", "-g", "rg1", "--query", "[0].databases[0].properties.port")
    assert r.out == "10000\n"
    r = run("redisenterprise", "list", "-o", "table")
    lines = r.out.splitlines()
    assert lines[0].split() == ["Name", "ResourceGroup", "Location"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["cache1", "rg1", "westus"]


def test_bad_query(run: Any) -> None:
    create_cluster(run)
    r = run("redisenterprise", "list", "--query", "[?")
    assert r.code == 2 and "argument --query: invalid jmespath query supplied: '[?'" in r.err


def test_update_sends_only_given_fields(run: Any, api: FakeArm) -> None:
    create_cluster(run)
    r = run("redisenterprise", "update", "-n", "cache1", "-g", "rg1", "--sku", "Balanced_B10")
    assert r.code == 0, r.err
    assert api.last_patch == {"sku": {"name": "Balanced_B10"}}
    assert r.json()["sku"]["name"] == "Balanced_B10"
    r = run("redisenterprise", "update", "-n", "cache1", "-g", "rg1")
    assert r.code == 2 and "at least one of" in r.err


def test_delete_cluster_and_skus(run: Any, api: FakeArm) -> None:
    create_cluster(run)
    r = run("redisenterprise", "list-skus-for-scaling", "-n", "cache1", "-g", "rg1")
    assert r.json() == {"skus": [{"name": "Balanced_B10", "sizeInGB": 12}]}
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")
    assert (r.code, r.out) == (0, "")
    assert not api.clusters
    r = run("redisenterprise", "delete", "-n", "cache1", "-g", "rg1", "--yes")  # 204: absent is fine
    assert r.code == 0


# -- databases ------------------------------------------------------------------------------------


def test_database_keys(run: Any) -> None:
    create_cluster(run)
    base = ("--cluster-name", "cache1", "-g", "rg1")
    r = run("redisenterprise", "database", "list-keys", *base)
    assert r.json() == {"primaryKey": PRIMARY_KEY, "secondaryKey": "second"}
    r = run("redisenterprise", "database", "regenerate-key", *base, "--key-type", "Secondary")
    assert r.json()["secondaryKey"] == "second-2"
    r = run("redisenterprise", "database", "list-keys", *base, "--query", "primaryKey", "-o", "tsv")
    assert r.out == PRIMARY_KEY + "\n"


def test_database_show_list_update_flush_delete(run: Any, api: FakeArm) -> None:
    create_cluster(run)
    base = ("--cluster-name", "cache1", "-g", "rg1")
    assert run("redisenterprise", "database", "show", *base).json()["resourceGroup"] == "rg1"
    assert [d["name"] for d in run("redisenterprise", "database", "list", *base).json()] == ["default"]
    r = run("redisenterprise", "database", "update", *base, "--eviction-policy", "AllKeysLRU")
    assert r.code == 0, r.err
    assert api.last_db_patch == {"properties": {"evictionPolicy": "AllKeysLRU"}}
    r = run("redisenterprise", "database", "flush", *base, "--yes")
    assert (r.code, r.out) == (0, "")
    r = run("redisenterprise", "database", "delete", *base, "--yes")
    assert (r.code, r.out) == (0, "")
    assert not api.databases


def test_show_connection_env_with_keys(run: Any, home: Path) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    r = run(
        "redisenterprise",
        "database",
        "show-connection",
        "--cluster-name",
        "cache1",
        "-g",
        "rg1",
        "--format",
        "env",
    )
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


def test_show_connection_json_and_disabled_keys(run: Any, home: Path) -> None:
    create_cluster(run, "--client-protocol", "Plaintext")
    base = ("--cluster-name", "cache1", "-g", "rg1")
    r = run("redisenterprise", "database", "show-connection", *base)
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
    r = run("redisenterprise", "database", "show-connection", *base, "--format", "env")
    assert r.out.splitlines() == [
        "export AMR_HOST=localhost",
        "export AMR_PORT=10000",
        "export AMR_SSL=false",
    ]


def test_show_connection_json_with_password(run: Any, home: Path) -> None:
    create_cluster(run, "--access-keys-authentication", "Enabled")
    base = ("--cluster-name", "cache1", "-g", "rg1")
    info = run("redisenterprise", "database", "show-connection", *base).json()
    assert info["redisUrl"] == "rediss://:pr1mary%2Bkey%2Fwith%3Dchars%3Bx@localhost:10000"
    assert info["password"] == PRIMARY_KEY and info["ssl"] is True
    assert info["caFile"] == str(home / "pki" / "ca.pem")
    r = run("redisenterprise", "database", "show-connection", *base, "--format", "redis-py")
    assert "redis.RedisCluster(host='localhost', port=10000" in r.out and "ssl=True" in r.out


# -- account --------------------------------------------------------------------------------------


def test_account_show_and_token(run: Any) -> None:
    r = run("account", "show")
    assert r.json()["id"] == SUB and r.json()["user"] == {"name": CLIENT_ID, "type": "servicePrincipal"}
    tok = run("account", "get-access-token").json()
    assert tok["accessToken"] == "tok-1" and tok["tokenType"] == "Bearer"
    assert isinstance(tok["expires_on"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", tok["expiresOn"])
    assert list(tok) == ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"]


# -- failures -------------------------------------------------------------------------------------


def test_not_set_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    ctx = Context(
        stdout=io.StringIO(), stderr=err, settings_factory=lambda: load_settings(home=tmp_path, env={})
    )
    assert main(["group", "list"], context=ctx) == 1
    assert err.getvalue() == (
        f"ERROR: amr is not set up in {tmp_path}: run 'amr serve --detach' (or 'make run') first.\n"
    )


def test_connection_refused(home: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    err = io.StringIO()
    ctx = Context(
        stdout=io.StringIO(),
        stderr=err,
        settings_factory=lambda: load_settings(home=home, env={}),
        transport=httpx.MockTransport(refuse),
    )
    assert main(["redisenterprise", "list"], context=ctx) == 1
    assert err.getvalue() == (
        f"ERROR: cannot reach the amr API at {ENDPOINT}: [Errno 111] Connection refused. "
        "Start it with 'amr serve --detach' or 'make run'.\n"
    )


def test_bad_secret(run: Any, home: Path) -> None:
    creds = json.loads((home / "credentials.json").read_text())
    creds["clientSecret"] = "wrong"
    (home / "credentials.json").write_text(json.dumps(creds))
    r = run("group", "list")
    assert (r.code, r.err) == (1, "ERROR: (invalid_client) bad secret\n")


def test_unexpected_exception_has_no_traceback(home: Path) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("kaboom")

    err = io.StringIO()
    ctx = Context(
        stdout=io.StringIO(),
        stderr=err,
        settings_factory=lambda: load_settings(home=home, env={}),
        transport=httpx.MockTransport(boom),
    )
    assert main(["group", "list"], context=ctx) == 1
    assert err.getvalue().startswith("ERROR: unexpected error: RuntimeError: kaboom.")
    assert "Traceback" not in err.getvalue()


def test_argument_errors_exit_2(run: Any) -> None:
    r = run("redisenterprise", "create", "-n", "c")
    assert r.code == 2 and "usage: amr redisenterprise create" in r.err
    r = run("group", "list", "-o", "yaml")
    assert r.code == 2 and "invalid choice" in r.err
    r = run("nonsense")
    assert r.code == 2
    r = run(
        "redisenterprise", "create", "-n", "c", "-g", "g", "-l", "l", "--sku", "B", "--persistence", "aof=1"
    )
    assert r.code == 2 and "--persistence" in r.err


def test_help_exits_0(run: Any) -> None:
    r = run("redisenterprise", "database", "--help")
    assert r.code == 0 and "show-connection" in r.out


# -- the client's LRO handling, driven directly -----------------------------------------------------


def make_client(handler: Any, **kwargs: Any) -> Any:
    from amr.cli.client import ArmClient, Credentials

    creds = Credentials(TENANT, SUB, CLIENT_ID, SECRET, ENDPOINT, "")

    def with_token(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})
        return handler(request)

    kwargs.setdefault("sleep", lambda s: None)
    return ArmClient(creds, transport=httpx.MockTransport(with_token), **kwargs)


@pytest.mark.parametrize(
    ("status_body", "expected"),
    [
        ({"status": "Failed", "error": {"error": {"code": "Nested", "message": "m1"}}}, ("Nested", "m1")),
        ({"status": "Failed", "code": "TopLevel", "message": "m2"}, ("TopLevel", "m2")),
        ({"status": "Canceled"}, ("OperationCanceled", "the operation ended with status Canceled")),
    ],
)
def test_failed_operation_error_shapes(status_body: dict[str, Any], expected: tuple[str, str]) -> None:
    from amr.errors import ArmError

    def handler(request: httpx.Request) -> httpx.Response:
        if "/operationsStatus/" in request.url.path:
            return httpx.Response(200, json=status_body)
        return httpx.Response(
            202, headers={"Azure-AsyncOperation": f"{ENDPOINT}{LOCATIONS}/operationsStatus/1"}
        )

    with pytest.raises(ArmError) as e:
        make_client(handler).delete("/x")
    assert (e.value.code, e.value.message) == expected


def test_lro_deadline() -> None:
    from amr.errors import ArmError

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        if "/operationsStatus/" in request.url.path:
            return httpx.Response(200, json={"status": "InProgress"})
        return httpx.Response(
            201, json={}, headers={"Azure-AsyncOperation": f"{LOCATIONS}/operationsStatus/1"}
        )

    client = make_client(handler, sleep=sleep, clock=lambda: now[0], lro_timeout=2.0)
    with pytest.raises(ArmError) as e:
        client.put("/x", {})
    assert e.value.code == "OperationTimedOut"
    assert now[0] == pytest.approx(2.0)


def test_201_without_header_polls_provisioning_state() -> None:
    states = iter(["Creating", "Creating", "Succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(201, json={"properties": {"provisioningState": "Creating"}})
        return httpx.Response(200, json={"properties": {"provisioningState": next(states)}})

    assert make_client(handler).put("/x", {}) == {"properties": {"provisioningState": "Succeeded"}}


def test_poll_url_keeps_its_own_query() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "/operationsStatus/" in request.url.path:
            return httpx.Response(200, json={"status": "Succeeded"})
        url = f"{ENDPOINT}{LOCATIONS}/operationsStatus/1?api-version=2025-07-01&t=sig"
        return httpx.Response(202, headers={"Azure-AsyncOperation": url})

    make_client(handler).delete("/x")
    assert seen[-1].endswith("/operationsStatus/1?api-version=2025-07-01&t=sig")
    assert seen[0] == f"{ENDPOINT}/x?api-version=2025-07-01"


def test_401_retries_once_with_a_fresh_token() -> None:
    from amr.errors import ArmError

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return arm_error(401, "InvalidAuthenticationToken", "expired")
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler)
    assert client.get("/x") == {"ok": True}
    assert calls == ["/x", "/x"]

    client = make_client(lambda r: arm_error(401, "InvalidAuthenticationToken", "bad"))
    with pytest.raises(ArmError) as e:
        client.get("/x")
    assert e.value.code == "InvalidAuthenticationToken"
