"""The one asynchronous wait of the test suite (the synchronous one is
``tests.integration.amr_service.wait_until``): poll a condition with a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]], timeout: float, *, what: str = "", interval: float = 0.01
) -> T:
    """Poll ``condition`` (a function, or one returning an awaitable) until it returns something
    truthy, and return that; fail after ``timeout`` seconds. Other tasks run between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(interval)
