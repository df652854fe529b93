"""An in-memory Sentinel for unit tests of the reconciler (never for integration tests).

It keeps monitors as ``SENTINEL MASTERS`` shows them and answers errors the way Sentinel does; a test
moves a monitor (``fail_over``) or marks it busy (``flags``) as a real failover would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amr.errors import NodeError


@dataclass
class FakeMonitor:
    host: str
    port: int
    quorum: int
    flags: set[str] = field(default_factory=lambda: {"master"})
    options: dict[str, str] = field(default_factory=dict)


class FakeSentinel:
    """Implements amr.nodes.sentinel.SentinelAdmin in memory. Set ``unreachable`` to make every call
    raise NodeError, as a Sentinel that is not running would."""

    def __init__(self) -> None:
        self.monitors: dict[str, FakeMonitor] = {}
        self.commands: list[tuple[str, ...]] = []  # what was sent, secrets included (tests only)
        self.unreachable = False
        self.refused = 0  # calls refused while unreachable
        self.fail_set = False
        self.periods: dict[str, int] = {"info-period": 10000, "ping-period": 1000}  # SENTINEL DEBUG

    def _check(self) -> None:
        if self.unreachable:
            self.refused += 1
            raise NodeError("Sentinel at /fake/sentinel.sock: SENTINEL failed: ConnectionError: not running")

    async def masters(self) -> object:
        self._check()
        return [
            {
                "name": name,
                "ip": m.host,
                "port": str(m.port),
                "quorum": str(m.quorum),
                "flags": ",".join(sorted(m.flags)),
                **{k: v for k, v in m.options.items() if k != "auth-pass" and k != "auth-user"},
            }
            for name, m in self.monitors.items()
        ]

    async def monitor(
        self, name: str, host: str, port: int, quorum: int, options: Sequence[tuple[str, str]]
    ) -> None:
        self._check()
        self.commands.append(("MONITOR", name, host, str(port), str(quorum)))
        if name in self.monitors:
            raise NodeError(
                "Sentinel at /fake/sentinel.sock: SENTINEL MONITOR failed: Duplicate master name."
            )
        self.monitors[name] = FakeMonitor(
            host,
            port,
            quorum,
            options={"down-after-milliseconds": "30000", "failover-timeout": "180000", "parallel-syncs": "1"},
        )
        try:
            await self.set(name, options)
        except NodeError:
            del self.monitors[name]  # as the real client does: no monitor without its credentials
            raise

    async def set(self, name: str, options: Sequence[tuple[str, str]]) -> None:
        self._check()
        self.commands.append(("SET", name, *(a for pair in options for a in pair)))
        monitor = self.monitors.get(name)
        if monitor is None or self.fail_set:
            raise NodeError("Sentinel at /fake/sentinel.sock: SENTINEL SET failed: No such master")
        for key, value in options:
            if key == "quorum":
                monitor.quorum = int(value)
            else:
                monitor.options[key] = value

    async def remove(self, name: str) -> bool:
        self._check()
        self.commands.append(("REMOVE", name))
        return self.monitors.pop(name, None) is not None

    async def timings(self) -> object:
        self._check()
        return [item for name, value in self.periods.items() for item in (name.upper(), value)]

    async def set_timings(self, values: Sequence[tuple[str, int]]) -> None:
        self._check()
        self.commands.append(("DEBUG", *(str(a) for pair in values for a in pair)))
        self.periods.update(values)

    async def close(self) -> None:
        pass

    def fail_over(self, name: str, port: int) -> None:
        """Sentinel promoted the replica on ``port`` and now monitors it (+switch-master)."""
        self.monitors[name].port = port
