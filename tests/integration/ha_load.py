"""Helpers for tests and benchmarks of high availability: a client writing through a database's
endpoint while nodes fail, and admin access to a node's unix socket."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.logic.security.node_credentials import CredentialMasters, database_uid_of_node


def endpoint_client(ca_file: str, port: int, key: str, timeout: float = 2.0) -> redis.Redis:
    """A plain redis-py client of a database endpoint (TLS), without retries of its own."""
    return redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=ca_file, socket_timeout=timeout,
        socket_connect_timeout=timeout, decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def admin_password(home: Path, socket: str) -> str:
    """amr's admin password on the nodes of the database a node's socket belongs to."""
    master = (home / "secrets" / "admin.secret").read_text().strip()
    return CredentialMasters(admin=master).admin_for(database_uid_of_node(socket))


def admin_client(home: Path, socket: str) -> redis.Redis:
    """amr's admin user on a node's unix socket."""
    password = admin_password(home, socket)
    return redis.Redis(
        unix_socket_path=socket, username="amr-admin", password=password, socket_timeout=2,
        decode_responses=True,
    )  # fmt: skip


def routes_of(home: Path, port: int) -> dict[str, Any]:
    """The gateway's route of a database port (routes.json)."""
    routes = json.loads((home / "gateway" / "routes.json").read_text())["routes"]
    (route,) = [r for r in routes if r["port"] == port]
    return dict(route)


def node_name(socket: str) -> str:
    """The node a unix socket belongs to (``run/<node>.sock``)."""
    return Path(socket).name.removesuffix(".sock")


@dataclass
class Writer:
    """Writes k<i> = i through the endpoint on one connection, retrying each write until it is
    acknowledged (reconnecting after the gateway closed the connection, READONLY, MOVED ...), and
    remembers when each write was acknowledged."""

    client: Any  # redis.Redis or redis.RedisCluster
    pause: float = 0.002
    acked: list[int] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.client.set(f"k{i}", str(i))
            except redis.RedisError as e:
                # A closed connection, READONLY from a primary that just became a replica, MOVED.
                self.errors.append(type(e).__name__)
                time.sleep(0.005)
                continue
            self.ack_times.append(time.monotonic())
            self.acked.append(i)
            i += 1
            time.sleep(self.pause)

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def acked_after(self, moment: float) -> int:
        """How many writes were acknowledged after ``moment`` (time.monotonic())."""
        return sum(1 for t in self.ack_times if t > moment)

    def gap_after(self, moment: float, until: float | None = None) -> float:
        """The longest time between two acknowledgements from the last one before ``moment`` up to
        ``until`` (the end when None): how long the client waited because of what happened then."""
        times = [t for t in self.ack_times if until is None or t <= until]
        start = max((i for i, t in enumerate(times) if t <= moment), default=None)
        if start is None or start + 1 >= len(times):
            return float("inf")
        window = times[start:]
        return max(b - a for a, b in zip(window, window[1:], strict=False))

    def longest_gap(self, start: float, end: float) -> tuple[float, float]:
        """The longest time without an acknowledged write in [start, end], and when it began
        (seconds after ``start``)."""
        times = [start, *(t for t in self.ack_times if start <= t <= end), end]
        return max((b - a, a - start) for a, b in zip(times, times[1:], strict=False))


def missing_writes(admin: Any, acked: list[int]) -> list[int]:
    """The acknowledged writes that ``admin`` (a node, or a client of the endpoint) does not hold."""
    missing = []
    for start in range(0, len(acked), 500):
        batch = acked[start : start + 500]
        pipe = admin.pipeline(transaction=False)  # one GET per key: in a cluster they span slots
        for i in batch:
            pipe.get(f"k{i}")
        missing += [i for i, v in zip(batch, pipe.execute(), strict=True) if v != str(i)]
    return missing
