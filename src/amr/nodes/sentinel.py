"""The host's Sentinel: its files under AMR_HOME/sentinel and a client over its unix socket.

Sentinel listens on no TCP port, only on ``sentinel/sentinel.sock`` (mode 0700, in a 0700 directory),
so it needs no password of its own: reaching the socket already takes this user's rights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from amr.errors import ConfigError, NodeError
from amr.logic.sentinel_conf import (
    render_sentinel_conf,
    sentinel_conf_path,
    sentinel_socket_path,
    validate_sentinel_settings,
)
from amr.logic.sentinel_plan import parse_sentinel_timings, plan_sentinel_timings
from amr.nodes.resp import redact
from amr.settings import Settings

# Short: the reconciler asks every tick, and a Sentinel that does not answer should not hold it up.
_TIMEOUT = 2.0
_SECRET_OPTIONS = frozenset({"auth-pass"})

Command = tuple[str | int, ...]


class SentinelAdmin(Protocol):
    """The SENTINEL commands amr uses. Every method raises NodeError when Sentinel cannot be reached
    or refuses; ``remove`` of an absent monitor succeeds."""

    async def masters(self) -> object:
        """The raw ``SENTINEL MASTERS`` reply."""
        ...

    async def monitor(
        self, name: str, host: str, port: int, quorum: int, options: Sequence[tuple[str, str]]
    ) -> None:
        """SENTINEL MONITOR, then SENTINEL SET of ``options`` (credentials included), as one unit: a
        monitor whose SET failed is removed again, since one without credentials is useless."""
        ...

    async def set(self, name: str, options: Sequence[tuple[str, str]]) -> None: ...

    async def remove(self, name: str) -> bool:
        """SENTINEL REMOVE; False if there was no such monitor."""
        ...

    async def timings(self) -> object:
        """The raw ``SENTINEL DEBUG`` reply: Sentinel's periods."""
        ...

    async def set_timings(self, values: Sequence[tuple[str, int]]) -> None:
        """``SENTINEL DEBUG <name> <value> ...``."""
        ...

    async def close(self) -> None: ...


class UnixSentinelClient:
    """A ``SentinelAdmin`` over the Sentinel's unix socket. Connects lazily; never retries by itself
    (MONITOR is not idempotent; the reconciler replans from what Sentinel says next time)."""

    def __init__(self, socket: str, timeout: float = _TIMEOUT) -> None:
        self.socket = socket
        # Sentinel has no users of its own to log in as; the socket's mode is the access control.
        self._client = redis.asyncio.Redis(
            unix_socket_path=socket,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    async def _run(self, *commands: Command, secrets: Sequence[str] = ()) -> list[object]:
        """Send ``commands`` in one write (so Sentinel runs them in one go, between two of its timer
        ticks) and return their replies; an error reply stays in the list as an exception."""
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except (redis.exceptions.RedisError, OSError) as e:
            raise NodeError(self._error(commands[0], e, secrets)) from e

    def _error(self, command: Command, error: BaseException, secrets: Sequence[str]) -> str:
        # The engine may quote an argument back; a password must not reach a log that way.
        message = redact(str(error))
        for secret in secrets:
            if secret:
                message = message.replace(secret, "[redacted]")
        words = " ".join(str(w) for w in command[:2])
        return f"Sentinel at {self.socket}: {words} failed: {type(error).__name__}: {message}"

    def _check(self, commands: Sequence[Command], replies: list[object], secrets: Sequence[str]) -> None:
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, BaseException):
                raise NodeError(self._error(command, reply, secrets))

    async def masters(self) -> object:
        command: Command = ("SENTINEL", "MASTERS")
        replies = await self._run(command)
        self._check([command], replies, ())
        return replies[0]

    async def monitor(
        self, name: str, host: str, port: int, quorum: int, options: Sequence[tuple[str, str]]
    ) -> None:
        # In one write: SET of credentials makes Sentinel drop the links of the monitor, and links it
        # dropped reconnect only a second later, which a short down-after-milliseconds would take for
        # the primary being down. Sent together, SET lands before the first link is made.
        secrets = [v for k, v in options if k in _SECRET_OPTIONS]
        commands: list[Command] = [("SENTINEL", "MONITOR", name, host, port, quorum)]
        if options:
            commands.append(("SENTINEL", "SET", name, *(a for pair in options for a in pair)))
        replies = await self._run(*commands, secrets=secrets)
        if isinstance(replies[0], BaseException):
            self._check(commands[:1], replies[:1], secrets)
        if len(replies) > 1 and isinstance(replies[1], BaseException):
            await self.remove(name)
            self._check(commands, replies, secrets)

    async def set(self, name: str, options: Sequence[tuple[str, str]]) -> None:
        secrets = [v for k, v in options if k in _SECRET_OPTIONS]
        command: Command = ("SENTINEL", "SET", name, *(a for pair in options for a in pair))
        self._check([command], await self._run(command, secrets=secrets), secrets)

    async def remove(self, name: str) -> bool:
        command: Command = ("SENTINEL", "REMOVE", name)
        (reply,) = await self._run(command)
        if isinstance(reply, redis.exceptions.ResponseError) and "No such master" in str(reply):
            return False
        self._check([command], [reply], ())
        return True

    async def timings(self) -> object:
        command: Command = ("SENTINEL", "DEBUG")
        replies = await self._run(command)
        self._check([command], replies, ())
        return replies[0]

    async def set_timings(self, values: Sequence[tuple[str, int]]) -> None:
        command: Command = ("SENTINEL", "DEBUG", *(str(a) for pair in values for a in pair))
        self._check([command], await self._run(command), ())

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except (redis.exceptions.RedisError, OSError):
            pass


async def shorten_sentinel_periods(sentinel: SentinelAdmin) -> list[tuple[str, int]]:
    """Set Sentinel's periods (amr.logic.sentinel_plan.SENTINEL_TIMINGS) if it runs without them, as
    after each of its restarts; return what was set. Raises NodeError if Sentinel cannot be reached."""
    missing = plan_sentinel_timings(parse_sentinel_timings(await sentinel.timings()))
    if missing:
        await sentinel.set_timings(missing)
    return missing


def sentinel_client_for(settings: Settings) -> UnixSentinelClient:
    """A client of this AMR_HOME's Sentinel."""
    return UnixSentinelClient(sentinel_socket_path(str(settings.sentinel_dir)))


def write_sentinel_conf(settings: Settings) -> Path:
    """Check the ``ha`` settings, create the Sentinel directory (0700) and write its first sentinel.conf
    (0600) unless one exists: Sentinel keeps its state in that file, which must survive restarts.
    Returns the config's path. Raises ConfigError if the settings or the directory are unusable."""
    ha = settings.ha
    validate_sentinel_settings(ha.sentinel_quorum, ha.down_after_ms, ha.failover_timeout_ms)
    directory = settings.sentinel_dir
    conf = Path(sentinel_conf_path(str(directory)))
    if len(sentinel_socket_path(str(directory)).encode()) > 100:
        raise ConfigError(f"AMR_HOME {settings.home} is too long for the Sentinel's unix socket path")
    try:
        text = render_sentinel_conf(str(directory))
    except ValueError as e:
        raise ConfigError(f"cannot run Sentinel in {directory}: {e}") from e
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        if conf.exists():
            # Sentinel rewrites the file under the supervisor's umask (077); hold the mode anyway,
            # since the file holds the admin secret (auth-pass).
            os.chmod(conf, 0o600)
            return conf
        fd = os.open(conf, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except OSError as e:
        raise ConfigError(f"cannot write the Sentinel's config {conf}: {e}") from e
    return conf
