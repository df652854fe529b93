"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from amr.api.app import create_app
from amr.api.auth import Principal, TokenService
from amr.api.context import Services
from amr.logic.token_throttle import TokenThrottle
from amr.settings import ApiSettings, Settings
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.reconciler import FakeReconciler
from tests.unit.api.api_harness import (
    MAX_BODY,
    SUB,
    TENANT,
    Api,
)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock()
    store = SqlStore.open_file(tmp_path / "amr.db")
    reconciler = FakeReconciler(store, clock.now)
    tokens = TokenService(b"k" * 32, Principal(TENANT, "client", "secret"), clock.time)
    busy: set[int] = set()
    ids = iter(range(1, 1000))
    services = Services(
        settings=Settings(home=tmp_path, api=ApiSettings(max_body_bytes=MAX_BODY)),
        store=store,
        reconciler=reconciler,
        tokens=tokens,
        subscription_id=SUB,
        tenant_id=TENANT,
        port_is_free=lambda port: port not in busy,
        now=clock.now,
        new_id=lambda: f"op-{next(ids)}",
        token_throttle=TokenThrottle(limit=3, window=60, cooldown=30),
        monotonic=clock.time,
    )
    token, _ = tokens.issue("client", "secret", "https://management.azure.com/.default")
    with TestClient(
        create_app(services), base_url="https://testserver", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield Api(client, store, reconciler, clock, tokens, busy)
    store.close()
