"""The admin connection to a node: amr's engine client over the node's unix socket as the internal
admin user, with replies shaped as the reconciler expects them (amr.logic.resp.engine_codec)."""

from __future__ import annotations

from collections.abc import Sequence

from amr.logic.resp.engine_codec import Command, shape_admin_reply
from amr.nodes.engine_client import EnginePool

# Reconnect attempts for one command: a node restarting under the supervisor comes back within
# milliseconds, and callers (the reconciler) replan on failure anyway.
_RETRIES = 2


class UnixValkeyAdmin:
    """A ``ValkeyAdmin`` over a unix socket. Connects lazily; every failure is a NodeError (an
    EngineError subclass for an error reply, EngineUnreachable for a node that does not answer)."""

    def __init__(
        self,
        socket: str,
        user: str,
        password: str,
        timeout: float = 5.0,
        decode: bool = True,
        legacy_password: str = "",
        kept: bool = False,
    ) -> None:
        self.socket = socket
        # Kept by its backend for the node's life: ``close`` leaves its connections open (``release``
        # closes them).
        self.kept = kept
        # Slot migration runs many pipelines at once (amr.nodes.slot_migration): each gets its own
        # connection from the pool.
        self._pool = EnginePool(
            socket,
            user,
            password,
            timeout=timeout,
            decode=decode,
            client_name="amr-admin",
            legacy_password=legacy_password,
            retries=_RETRIES,
        )

    def __repr__(self) -> str:
        return f"UnixValkeyAdmin({self.socket!r})"

    async def execute(self, *args: str | int | bytes) -> object:
        """Run one command and return its reply as redis-py would shape it; raise NodeError on failure."""
        return shape_admin_reply(args, await self._pool.execute(*args))

    async def pipeline(self, commands: Sequence[Command]) -> list[object]:
        """Send ``commands`` in one round trip (no transaction); raise NodeError if any failed.
        Raw replies: bytes, or str when decoding."""
        return await self._pool.pipeline(commands)

    async def close(self) -> None:
        if not self.kept:
            self._pool.close()

    def release(self) -> None:
        """Close its connections, kept or not."""
        self._pool.close()
