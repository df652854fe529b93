"""The admin connection to a node: redis-py over the node's unix socket as the internal admin user."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from amr.errors import NodeError
from amr.nodes.raw_pipeline import RawPipelines
from amr.nodes.resp import redact


class UnixValkeyAdmin:
    """A ``ValkeyAdmin`` over a unix socket. Connects lazily; redis errors become NodeError."""

    def __init__(
        self,
        socket: str,
        user: str,
        password: str,
        timeout: float = 5.0,
        decode: bool = True,
        legacy_password: str = "",
    ) -> None:
        self.socket = socket
        self._user = user
        self._timeout = timeout
        self._decode = decode
        # Tried once if ``password`` is refused: the password a node started by an older amr still
        # has, until the control plane's convergence sets the current one.
        self._legacy_password = legacy_password
        self._pipelines = RawPipelines(socket, user, password, timeout, decode)
        self._client = self._connect(password)

    def _connect(self, password: str) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(
            unix_socket_path=self.socket,
            username=self._user,
            password=password,
            decode_responses=self._decode,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            # A short retry: a node restarting under the supervisor comes back within milliseconds,
            # and callers (the reconciler) replan on failure anyway.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            client_name="amr-admin",
            # Slot migration runs many pipelines at once (amr.nodes.slot_migration); connections
            # open only as they are needed.
            max_connections=1024,
        )

    async def execute(self, *args: str | int | bytes) -> object:
        """Run one command and return redis-py's decoded reply; raise NodeError on failure."""
        try:
            try:
                return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
            except redis.exceptions.AuthenticationError:
                if not self._legacy_password:
                    raise
                legacy, self._legacy_password = self._legacy_password, ""
                await self._client.aclose()
                self._client = self._connect(legacy)
                return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        except redis.exceptions.RedisError as e:
            command = str(args[0]) if args else ""
            raise NodeError(
                f"node at {self.socket}: {command} failed: {type(e).__name__}: {redact(str(e))}"
            ) from e
        except OSError as e:
            command = str(args[0]) if args else ""
            raise NodeError(f"node at {self.socket}: {command} failed: {e}") from e

    async def pipeline(self, commands: Sequence[Sequence[str | int | bytes]]) -> list[object]:
        """Send ``commands`` in one round trip (no transaction); raise NodeError if any failed.
        Raw replies (no redis-py response callbacks): bytes, or str when decoding."""
        return await self._pipelines.run(commands)

    async def close(self) -> None:
        self._pipelines.close()
        try:
            await self._client.aclose()
        except (redis.exceptions.RedisError, OSError):
            pass
