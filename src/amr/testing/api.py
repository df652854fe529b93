"""The real ARM API app in process, on the fakes: ``create_app`` over a SqlStore file, the
FakeReconciler and a FakeClock. Tests of the API call it through Starlette's TestClient; tests of its
clients (the CLI) send their own httpx requests to it through ``SettlingTransport``, so that they
exercise the routes, wire mapping, validation and LRO headers of the API they will really talk to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count

import httpx
from starlette.testclient import TestClient

from amr.api.app import create_app
from amr.api.auth import Principal, TokenService
from amr.api.context import Services
from amr.logic.security.token_throttle import TokenThrottle
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.reconciler import FakeReconciler

MANAGEMENT_SCOPE = "https://management.azure.com/.default"


@dataclass
class InProcessApi:
    """The app's unauthenticated TestClient and the fakes behind it. ``busy_ports`` are the ports
    the API's placement must treat as taken."""

    client: TestClient
    store: SqlStore
    reconciler: FakeReconciler
    clock: FakeClock
    tokens: TokenService
    principal: Principal
    subscription_id: str
    busy_ports: set[int] = field(default_factory=set)

    def token(self) -> str:
        """A bearer token of the local principal, as the token endpoint would issue it."""
        token, _ = self.tokens.issue(self.principal.client_id, self.principal.client_secret, MANAGEMENT_SCOPE)
        return token


@contextmanager
def in_process_api(
    settings: Settings,
    *,
    subscription_id: str,
    principal: Principal,
    token_throttle: TokenThrottle | None = None,
) -> Iterator[InProcessApi]:
    """The app on a fresh SqlStore in ``settings.home``, started (lifespan) until the block ends."""
    clock = FakeClock()
    store = SqlStore.open_file(settings.home / "amr.db")
    reconciler = FakeReconciler(store, clock.now)
    tokens = TokenService(b"k" * 32, principal, clock.time)
    busy: set[int] = set()
    ids = count(1)
    services = Services(
        settings=settings,
        store=store,
        reconciler=reconciler,
        tokens=tokens,
        subscription_id=subscription_id,
        tenant_id=principal.tenant_id,
        port_is_free=lambda port: port not in busy,
        now=clock.now,
        new_id=lambda: f"op-{next(ids)}",
        token_throttle=token_throttle or TokenThrottle(limit=3, window=60, cooldown=30),
        monotonic=clock.time,
    )
    try:
        with TestClient(create_app(services), base_url="https://testserver") as client:
            yield InProcessApi(client, store, reconciler, clock, tokens, principal, subscription_id, busy)
    finally:
        services.metrics.close()
        store.close()


class SettlingTransport(httpx.BaseTransport):
    """An httpx transport into an ``InProcessApi`` that settles the FakeReconciler after every
    request: what a reconcile tick does between two polls of a long-running operation, so a client
    that polls sees its operation finish. ``requests`` keeps what was sent, for assertions."""

    def __init__(self, api: InProcessApi, settle: Callable[[], None] | None = None) -> None:
        self._api = api
        self._settle = settle or api.reconciler.settle
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        content = request.read()
        # The app sees the request's path and query whatever host the client was configured with.
        response = self._api.client.request(
            request.method,
            request.url.raw_path.decode("ascii"),
            content=content,
            headers=[
                (k, v) for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            ],
        )
        self._settle()
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)
