"""The gateway workers' questions to each other about the clients they serve.

Each worker (``gateway.workers`` processes share every port) listens on ``AMR_HOME/run/gateway-<n>.sock``
(the run directory is amr's own, mode 0700); a question and its answer are one JSON line each. A
worker that does not answer within ``PEER_TIMEOUT`` (restarting, stopped) is left out of the answer.
Only client addresses and ids cross these sockets, never a secret. `amr monitord` asks each worker
for its counters (``{"op": "stats"}``, amr.gateway.client_directory) the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amr.questions import ask

log = logging.getLogger(__name__)

PEER_TIMEOUT = 2.0
_LINE_LIMIT = 64 << 20  # an answer lists up to every client of a database (200,000 on the biggest SKU)


def peer_socket(run_dir: Path, worker: int) -> Path:
    return run_dir / f"gateway-{worker}.sock"


class PeerServer:
    """Answers the other workers: ``answer`` turns a question into its answer (both dicts)."""

    def __init__(
        self, run_dir: Path, worker: int, answer: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        self.path = peer_socket(run_dir, worker)
        self.answer = answer
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        # The run directory is amr's own (the node backend makes it); a gateway run on a bare home
        # (``amr gateway`` alone) makes it, private, itself.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A socket file left by this worker's previous run (it was killed) is replaced.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, str(self.path), limit=_LINE_LIMIT)
        self.path.chmod(0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                line = await reader.readline()
            request = json.loads(line)
            reply = self.answer(request) if isinstance(request, dict) else {}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, ValueError, asyncio.LimitOverrunError) as e:
            log.debug("a peer's question failed: %s", type(e).__name__)
        finally:
            writer.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def _ask_one(path: Path, request: bytes) -> dict[str, Any] | None:
    return await ask(path, request, PEER_TIMEOUT, _LINE_LIMIT)


async def ask_peers(
    run_dir: Path, worker: int, workers: int, request: dict[str, Any]
) -> list[dict[str, Any]]:
    """Ask every other worker ``request`` at once; the answers of those that replied."""
    line = json.dumps(request).encode() + b"\n"
    paths = [peer_socket(run_dir, w) for w in range(workers) if w != worker]
    answers = await asyncio.gather(*(_ask_one(p, line) for p in paths))
    return [a for a in answers if a is not None]
