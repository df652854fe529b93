"""Fixtures of the reconciler tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from amr.logic.security.node_credentials import CredentialMasters
from amr.model.resources import ResourceGroup
from amr.model.routes import RouteTable
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNodeBackend
from tests.unit.reconciler.reconciler_ticks import SUB


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path)
    store = SqlStore.open_file(tmp_path / "amr.db")
    backend = FakeNodeBackend()
    routes: list[RouteTable] = []
    reconciler = Reconciler(
        settings, store, backend, CredentialMasters("admin-pw"), routes.append, lambda port: True
    )
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    yield store, backend, routes, reconciler
    store.close()
