from __future__ import annotations

from collections.abc import Iterator

import pytest

from amr.logic.keyspace.keyslot import choose_key_slot
from tests.integration.amr_service import AmrService


@pytest.fixture(scope="module")
def amr_service() -> Iterator[AmrService]:
    """A running amr shared by the tests of one module."""
    service = AmrService().start()
    try:
        yield service
    finally:
        service.destroy()


def running_service(extra_env: dict[str, str] | None = None) -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, destroyed afterwards (the body of a fixture)."""
    svc = AmrService(extra_env).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


# Four shards per database, as the sharding and scaling tests use.
FOUR_SHARDS = {"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}


def first_shard_key(prefix: str) -> str:
    """A key named ``prefix<n>`` in the first of four shards' slots (0-4095): on the node whose
    INFO an EnterpriseCluster endpoint answers INFO with (blocked_clients)."""
    return next(f"{prefix}{i}" for i in range(1000) if choose_key_slot(f"{prefix}{i}".encode()) < 4096)


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, shared by the tests of one module (a module
    defining its own ``service`` uses that instead)."""
    yield from running_service()
