"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.api.auth import Principal
from amr.settings import ApiSettings, Settings
from amr.testing.api import in_process_api
from tests.unit.api.api_harness import MAX_BODY, SUB, TENANT, Api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(home=tmp_path, api=ApiSettings(max_body_bytes=MAX_BODY))
    with in_process_api(
        settings, subscription_id=SUB, principal=Principal(TENANT, "client", "secret")
    ) as app:
        app.client.headers["Authorization"] = f"Bearer {app.token()}"
        yield Api(app.client, app.store, app.reconciler, app.clock, app.tokens, app.busy_ports)
