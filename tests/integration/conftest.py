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
