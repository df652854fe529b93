"""The CLI's client-side transport behaviour that the real API app cannot be made to show: a
nextLink on a list, an operation that never ends, a 401 then a fresh token, a poll URL with its own
query, the error shapes of a failed operation, a 201 without an operation header. Each test gives a
tiny ``httpx.MockTransport`` handler the canned responses of its one case."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from amr.cli.client import ArmClient
from amr.cli.context import Context
from amr.cli.credentials import Credentials
from amr.cli.main import main
from amr.errors import ArmError
from amr.settings import load_settings

from .conftest import ENDPOINT, PRINCIPAL, SUB

LOCATIONS = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus"
Handler = Callable[[httpx.Request], httpx.Response]


def arm_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "target": None}})


def token_response() -> httpx.Response:
    return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "t"})


def test_list_follows_next_link_with_one_token(home: Path) -> None:
    sent: list[httpx.Request] = []

    def two_pages(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.endswith("/oauth2/v2.0/token"):
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            assert form["scope"] == ["https://management.azure.com/.default"]
            return token_response()
        assert request.headers["Authorization"] == "Bearer t"
        if "$skiptoken" not in request.url.params:
            next_link = str(request.url.copy_set_param("$skiptoken", "1"))
            return httpx.Response(200, json={"value": [{"name": "rg1"}], "nextLink": next_link})
        return httpx.Response(200, json={"value": [{"name": "rg2"}]})

    out = io.StringIO()
    ctx = Context(
        stdout=out,
        stderr=io.StringIO(),
        settings_factory=lambda: load_settings(home=home, env={}),
        transport=httpx.MockTransport(two_pages),
    )
    assert main(["group", "list"], context=ctx) == 0
    assert [g["name"] for g in json.loads(out.getvalue())] == ["rg1", "rg2"]
    # One token per process (cached in memory only, even across the two list pages).
    assert [q.url.path.endswith("/oauth2/v2.0/token") for q in sent] == [True, False, False]
    assert sent[1].url.params["api-version"] == "2024-03-01"


def make_client(handler: Handler, **kwargs: Any) -> ArmClient:
    creds = Credentials(PRINCIPAL.tenant_id, SUB, PRINCIPAL.client_id, PRINCIPAL.client_secret, ENDPOINT, "")

    def with_token(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            return token_response()
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
