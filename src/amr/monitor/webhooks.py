"""Posting alert notifications to webhook receivers: each POST is its own task with a bounded
timeout, tried ``attempts`` times with a doubling backoff, so that a receiver that hangs or refuses
delays nothing but its own notification. A receiver's URL may carry a secret (Azure's webhook URLs
often hold a token in the query), so logs name the receiver and the host only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)


class WebhookSender:
    """Sends notifications in the background; ``close`` ends the ones still running."""

    def __init__(
        self, timeout: float, attempts: int, backoff: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, receiver: str, url: str, body: dict[str, Any]) -> asyncio.Task[bool]:
        """Start posting ``body`` to ``url``; the task's result says whether the receiver took it."""
        task = asyncio.get_running_loop().create_task(self._post(receiver, url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _post(self, receiver: str, url: str, body: dict[str, Any]) -> bool:
        host = urlsplit(url).hostname or "?"
        wait = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(url, json=body)
                if response.status_code < 300:
                    log.info("webhook %s (%s) took the notification", receiver, host)
                    return True
                problem = f"answered {response.status_code}"
                # A 4xx other than 408/429 will not change on a retry.
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}"
            log.warning(
                "webhook %s (%s) %s (attempt %d of %d)", receiver, host, problem, attempt, self._attempts
            )
            if attempt < self._attempts:
                await asyncio.sleep(wait)
                wait *= 2
        log.error("webhook %s (%s) did not take the notification: %s", receiver, host, problem)
        return False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
