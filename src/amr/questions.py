"""One question to another amr process over its unix socket: a JSON line out, a JSON line back.

The gateway's workers answer each other (amr.gateway.peers) and `amr monitord` (amr.monitor.nodes)
this way. A process that does not answer within the timeout (restarting, stopped) gives None.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


async def ask(path: Path, request: bytes, timeout: float, limit: int) -> dict[str, Any] | None:
    """Send ``request`` (one JSON line) to the socket at ``path``; its answer, or None."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=limit)
            try:
                writer.write(request)
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
        answer = json.loads(line)
    except (OSError, TimeoutError, ValueError, asyncio.LimitOverrunError) as e:
        log.debug("the process at %s did not answer: %s", path.name, type(e).__name__)
        return None
    return answer if isinstance(answer, dict) else None
