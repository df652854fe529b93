"""A coordinated switchover of a non-clustered shard: the replica takes over with every write the
primary acknowledged, and writes pause for milliseconds rather than the second Valkey's FAILOVER waits
for the replica's periodic acknowledgement.

The steps: pause writes on the primary (``CLIENT PAUSE WRITE``, which also stops expiry, eviction and
replication pings, so its offset holds still), wait until the replica's processed offset reaches the
primary's, promote the replica (``REPLICAOF NO ONE``), make the old primary its replica (it continues
with a partial resync), and lift the pause. Writes that waited in the pause then meet a replica and get
READONLY, which clients retry; the gateway moves connections to the new primary by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from amr.errors import NodeError
from amr.nodes.backend import ValkeyAdmin

_POLL = 0.001


def _offset(info: object, field: str) -> int:
    if not isinstance(info, Mapping) or field not in info:
        raise NodeError(f"INFO replication has no {field}")
    return int(info[field])


async def hand_over(
    primary: ValkeyAdmin,
    replica: ValkeyAdmin,
    replica_host: str,
    replica_port: int,
    timeout_ms: int = 5000,
) -> float:
    """Switch ``primary`` and ``replica`` (which must replicate from it); return how long writes were
    paused, in seconds. Raise NodeError, with writes resumed and the primary unchanged, if the replica
    does not catch up within ``timeout_ms``."""
    # The pause outlives us if we die halfway: the engine lifts it by itself after the timeout.
    await primary.execute("CLIENT", "PAUSE", str(timeout_ms + 1000), "WRITE")
    paused = time.monotonic()
    promoted = demoted = False
    try:
        target = _offset(await primary.execute("INFO", "replication"), "master_repl_offset")
        deadline = paused + timeout_ms / 1000
        while True:
            info = await replica.execute("INFO", "replication")
            if isinstance(info, Mapping) and info.get("master_link_status") == "up":
                if _offset(info, "slave_repl_offset") >= target:
                    break
            if time.monotonic() > deadline:
                raise NodeError(
                    f"the replica did not catch up with the primary within {timeout_ms} ms; nothing switched"
                )
            await asyncio.sleep(_POLL)
        await replica.execute("REPLICAOF", "NO", "ONE")
        promoted = True
        await primary.execute("REPLICAOF", replica_host, str(replica_port))
        demoted = True
    finally:
        # An old primary that could not be demoted stays paused (until the pause times out) rather
        # than take writes next to the new primary.
        if demoted or not promoted:
            await primary.execute("CLIENT", "UNPAUSE")
    return time.monotonic() - paused
