from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.amr_service import AmrService


@pytest.fixture(scope="module")
def amr_service() -> Iterator[AmrService]:
    """A running amr shared by the tests of one module."""
    service = AmrService().start()
    try:
        yield service
    finally:
        service.destroy()


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, shared by the tests of one module (a module
    defining its own ``service`` uses that instead)."""
    svc = AmrService().start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()
