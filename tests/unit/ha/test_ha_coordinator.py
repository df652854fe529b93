"""The `amr ha` coordinator's tick against fake nodes on unix sockets (a few lines of RESP each) and
an injected clock: it probes, promotes once, and reconnects to a node that comes back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from amr.ha.coordinator import Coordinator
from amr.ha.watch import WatchFile
from amr.logic.ha.watch import render_ha_watch
from amr.logic.outcomes import Outcome, Severity
from amr.model.ha import HaWatch, WatchedDatabase, WatchedNode, WatchedShard
from amr.settings import HaSettings
from amr.testing.fake_engine import FakeEngineSocket
from amr.testing.waits import wait_until_async


class FakeNode(FakeEngineSocket):
    """Answers AUTH, PING, INFO replication and CLUSTER FAILOVER like a cluster node would."""

    def __init__(self, path: str, info: str) -> None:
        super().__init__(path)
        self.info = info
        self.loading = False

    def answer(self, args: list[str], session: dict[str, Any]) -> bytes:
        name = args[0].upper()
        if name == "PING" and self.loading:
            return b"-LOADING Valkey is loading the dataset in memory\r\n"
        if name == "INFO":
            body = self.info.encode()
            return b"$%d\r\n%s\r\n" % (len(body), body)
        if name == "CLUSTER":
            self.info = "role:master\r\nmaster_repl_offset:100\r\n"
        return b"+OK\r\n" if name != "PING" else b"+PONG\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PRIMARY_INFO = "role:master\r\nmaster_repl_offset:100\r\n"
REPLICA_INFO = (
    "role:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:8500\r\nmaster_link_status:down\r\n"
    "master_link_down_since_seconds:0\r\nslave_repl_offset:100\r\n"
)


def run(test: Callable[[Path], Awaitable[None]], tmp_path: Path) -> None:
    asyncio.run(test(tmp_path))


def _setup(tmp_path: Path, gone_after_ms: int = 1000) -> tuple[FakeNode, FakeNode, Path, Coordinator, Clock]:
    primary = FakeNode(str(tmp_path / "p.sock"), PRIMARY_INFO)
    replica = FakeNode(str(tmp_path / "r.sock"), REPLICA_INFO)
    shard = WatchedShard(
        0, (WatchedNode("d1-0-0", primary.path, 8500), WatchedNode("d1-0-1", replica.path, 8501))
    )
    watch_file = tmp_path / "watch.json"
    watch_file.write_text(render_ha_watch(HaWatch((WatchedDatabase("db-id", "d1", (shard,)),))))
    clock = Clock()
    settings = HaSettings(
        down_after_ms=1000, failover_timeout_ms=10000, poll_ms=100, gone_after_ms=gone_after_ms
    )
    return (
        primary,
        replica,
        watch_file,
        Coordinator(WatchFile(watch_file), lambda uid: "secret", settings, "127.0.0.2", clock),
        clock,
    )


def test_a_primary_that_stops_answering_is_replaced_once(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        primary, replica, _, coordinator, clock = _setup(tmp_path)
        await primary.start()
        await replica.start()
        try:
            assert await coordinator.tick() == [
                Outcome(Severity.INFO, "watching 1 database(s), 2 node(s): every node answers")
            ]
            assert primary.commands[0] == ["AUTH", "amr-ha", "secret"]
            await primary.stop()
            clock.now += 0.5
            (line,) = await coordinator.tick()
            assert line.severity is Severity.INFO
            assert "does not answer; failover after 1000 ms" in line.message
            assert not any(c[0] == "CLUSTER" for c in replica.commands)
            clock.now += 0.6
            outcomes = await coordinator.tick()
            assert outcomes[0] == Outcome(
                Severity.WARNING,
                "promoted node d1-0-1 of database db-id shard 0 after primary d1-0-0 did not answer for 1.1 s",
            )
            assert replica.commands[-1] == ["CLUSTER", "FAILOVER", "TAKEOVER"]
            # The replica is primary now: nothing more, however long the old one stays away.
            for _ in range(3):
                clock.now += 5
                await coordinator.tick()
            assert sum(c[0] == "CLUSTER" for c in replica.commands) == 1
            # The old primary comes back (loading): the coordinator reconnects and sees it alive.
            primary.loading = True
            await primary.start()
            clock.now += 0.1
            await coordinator.tick()
            assert coordinator.probes["d1-0-0"].answered
        finally:
            await coordinator.close()
            await primary.stop()
            await replica.stop()

    run(scenario, tmp_path)


def test_a_primary_whose_process_is_gone_is_replaced_after_gone_after_ms(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        primary, replica, _, coordinator, clock = _setup(tmp_path, gone_after_ms=250)
        await primary.start()
        await replica.start()
        try:
            await coordinator.tick()
            await primary.stop()  # nothing listens on its socket any more
            clock.now += 0.1
            await coordinator.tick()  # the open connection breaks: not certain yet
            assert coordinator.probes["d1-0-0"].gone_since is None
            clock.now += 0.1
            await coordinator.tick()  # a new connection is refused: gone
            assert coordinator.probes["d1-0-0"].gone_since == clock.now
            clock.now += 0.2
            await coordinator.tick()  # gone for 0.2 s: not yet
            assert not any(c[0] == "CLUSTER" for c in replica.commands)
            clock.now += 0.1
            outcomes = await coordinator.tick()
            assert outcomes[0].severity is Severity.WARNING
            assert outcomes[0].message.startswith("promoted node d1-0-1 of database db-id shard 0")
            assert replica.commands[-1] == ["CLUSTER", "FAILOVER", "TAKEOVER"]
        finally:
            await coordinator.close()
            await primary.stop()
            await replica.stop()

    run(scenario, tmp_path)


def test_a_takeover_that_does_not_take_is_retried_after_the_failover_timeout(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        primary, replica, _, coordinator, clock = _setup(tmp_path)
        await replica.start()
        replica.answer = lambda args, session: (  # type: ignore[method-assign]
            b"-ERR not now\r\n" if args[0] == "CLUSTER" else FakeNode.answer(replica, args, session)
        )
        try:
            await coordinator.tick()
            clock.now += 1.5
            outcomes = await coordinator.tick()
            assert outcomes[0].severity is Severity.ERROR
            assert outcomes[0].message.startswith("could not promote node d1-0-1")
            assert "ERR not now" in outcomes[0].message
            clock.now += 5
            await coordinator.tick()
            assert sum(c[0] == "CLUSTER" for c in replica.commands) == 1
            clock.now += 5.1
            await coordinator.tick()
            assert sum(c[0] == "CLUSTER" for c in replica.commands) == 2
        finally:
            await coordinator.close()
            await replica.stop()

    run(scenario, tmp_path)


def test_nothing_happens_without_the_watch_file(tmp_path: Path) -> None:
    async def scenario(tmp_path: Path) -> None:
        primary, replica, watch_file, coordinator, clock = _setup(tmp_path)
        await replica.start()
        watch_file.unlink()
        try:
            assert await coordinator.tick() == [Outcome(Severity.INFO, "no HA watch file: nothing to watch")]
            clock.now += 30
            await coordinator.tick()
            assert replica.commands == []
        finally:
            await coordinator.close()
            await replica.stop()

    run(scenario, tmp_path)


def test_each_outcome_is_logged_at_its_severity(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(tmp_path: Path) -> None:
        _, _, watch_file, coordinator, _ = _setup(tmp_path)
        watch_file.unlink()
        stop = asyncio.Event()
        task = asyncio.create_task(coordinator.run(stop))
        await wait_until_async(
            lambda: any(r.name == "amr.ha.coordinator" for r in caplog.records), 2, what="a coordinator line"
        )
        stop.set()
        await task

    with caplog.at_level(logging.INFO, logger="amr.ha.coordinator"):
        run(scenario, tmp_path)
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "amr.ha.coordinator"]
    assert logged == [(logging.INFO, "ha: no HA watch file: nothing to watch")]
    assert Severity.WARNING == logging.WARNING and Severity.ERROR == logging.ERROR
