"""Reading the nodes and the gateway for `amr monitord`.

A node is read over a persistent connection to its unix socket as amr's metric user (``amr-monitor``):
``INFO everything`` and ``CLIENT LIST`` inside one MULTI/EXEC, so both describe the same instant (no
other client's command runs between them). Every read is bounded by a timeout; a node that does not
answer has no sample this time (its counters are read again next time: nothing is lost).

The gateway's workers answer one JSON line on ``AMR_HOME/run/gateway-<n>.sock`` (amr.gateway.peers):
``{"op": "stats"}`` gives each worker's start time, open connections and event totals per database.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from amr.errors import NodeError
from amr.logic.metrics.sample import NodeSample, parse_sample
from amr.logic.resp.engine_codec import is_error_reply
from amr.logic.security.node_credentials import MONITOR_USER
from amr.nodes.engine_client import EngineConnection
from amr.questions import ask

_SAMPLE = (("MULTI",), ("INFO", "everything"), ("CLIENT", "LIST"), ("EXEC",))
_STATS_LINE_LIMIT = 16 << 20


class NodeReader:
    """One node, read as ``amr-monitor`` over a connection kept open between samples."""

    def __init__(self, socket: str, password: str, timeout: float) -> None:
        self.socket = socket
        self._password = password
        self._timeout = timeout
        self._connection: EngineConnection | None = None
        self.problem = ""  # why the last read failed ("" when it did not)

    async def read(self) -> NodeSample | None:
        """The node's sample now; None when it did not answer or refused (``problem`` says why)."""
        try:
            async with asyncio.timeout(self._timeout):
                if self._connection is None:
                    self._connection = await EngineConnection.open(self.socket, MONITOR_USER, self._password)
                replies = await self._connection.send(_SAMPLE, "metric sample")
                at = time.time()
        except (NodeError, TimeoutError) as e:
            self.close()
            self.problem = str(e) or type(e).__name__
            return None
        answer = replies[-1]
        if is_error_reply(answer) or not isinstance(answer, list) or len(answer) != 2:
            # A node that does not know amr-monitor yet (the control plane adds it) refuses MULTI.
            self.problem = f"node at {self.socket} refused the sample: {str(replies[0])[:80]}"
            return None
        info, clients = answer
        self.problem = ""
        # Bytes: a client's name in CLIENT LIST may be anything.
        return parse_sample(at, _text(info), _text(clients))

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort()


def _text(reply: object) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


async def read_gateway(run_dir: Path, workers: int, timeout: float) -> dict[int, dict[str, Any]]:
    """Each gateway worker's counters, by worker index (a worker that did not answer is left out)."""
    paths = [run_dir / f"gateway-{w}.sock" for w in range(max(workers, 1))]
    answers = await asyncio.gather(*(ask(p, b'{"op": "stats"}\n', timeout, _STATS_LINE_LIMIT) for p in paths))
    return {w: a for w, a in enumerate(answers) if a is not None}
