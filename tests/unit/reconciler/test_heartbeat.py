"""The reconciler's heartbeat (AMR_HOME/run/reconciler.json): rewritten by the loop after each pass it
completes, with the pass count and the loop's clock, mode 0600; never a reason for the loop to stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from amr.home import write_reconciler_heartbeat
from amr.logic.outcomes import Outcome
from amr.logic.security.node_credentials import CredentialMasters
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.clock import FakeClock
from amr.testing.fake_nodes import FakeNodeBackend
from amr.testing.waits import wait_until_async


def _reconciler(settings: Settings, store: SqlStore, clock: FakeClock) -> Reconciler:
    return Reconciler(
        settings, store, FakeNodeBackend(), CredentialMasters("admin-pw"), lambda table: None,
        lambda port: True, now=clock.now,
    )  # fmt: skip


def _beat(settings: Settings) -> dict[str, Any]:
    try:
        return dict(json.loads(settings.reconciler_heartbeat_file.read_text()))
    except FileNotFoundError:
        return {}


async def _until(condition: Callable[[], bool]) -> None:
    await wait_until_async(condition, 5, what="the reconciler loop to get there")


def _running(reconciler: Reconciler, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``body`` while ``reconciler.run()`` runs beside it in the same event loop."""

    async def main() -> None:
        loop = asyncio.create_task(reconciler.run())
        try:
            await body()
        finally:
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop

    asyncio.run(main())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


@pytest.fixture
def store(settings: Settings):  # type: ignore[no-untyped-def]
    store = SqlStore.open_file(settings.db_file)
    yield store
    store.close()


def test_the_loop_rewrites_the_heartbeat_after_each_pass(settings: Settings, store: SqlStore) -> None:
    clock = FakeClock()
    reconciler = _reconciler(settings, store, clock)
    path = settings.reconciler_heartbeat_file
    assert path == settings.home / "run" / "reconciler.json"

    async def body() -> None:
        await _until(lambda: _beat(settings).get("passes") == 1)
        assert _beat(settings) == {"passes": 1, "at": clock.time(), "pid": os.getpid()}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        clock.advance(7)
        reconciler.notify()  # the next pass at once, not after the idle interval
        await _until(lambda: _beat(settings).get("passes") == 2)
        assert _beat(settings) == {"passes": 2, "at": clock.time(), "pid": os.getpid()}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == ["reconciler.json"]  # no temp file left

    _running(reconciler, body)


def test_a_pass_that_fails_is_not_counted(
    settings: Settings, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler = _reconciler(settings, store, FakeClock())
    calls: list[int] = []

    async def tick(wait: bool = True) -> list[Outcome]:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the store is locked")
        return []

    monkeypatch.setattr(reconciler, "tick", tick)

    async def body() -> None:
        await _until(lambda: len(calls) == 1)
        assert _beat(settings) == {}
        reconciler.notify()
        await _until(lambda: _beat(settings).get("passes") == 1)
        assert len(calls) == 2

    _running(reconciler, body)


def test_a_heartbeat_that_cannot_be_written_does_not_stop_the_loop(
    settings: Settings, store: SqlStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings.run_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.run_dir.write_text("not a directory")  # every write of the heartbeat fails
    reconciler = _reconciler(settings, store, FakeClock())
    calls: list[int] = []
    tick = reconciler.tick

    async def counted(wait: bool = True) -> list[Outcome]:
        calls.append(len(calls))
        return await tick(wait)

    monkeypatch.setattr(reconciler, "tick", counted)

    async def body() -> None:
        await _until(lambda: len(calls) == 1)
        reconciler.notify()
        await _until(lambda: len(calls) == 2)

    with caplog.at_level(logging.WARNING, logger="amr.reconciler.loop"):
        _running(reconciler, body)
    assert "cannot write the reconciler's heartbeat" in caplog.text


def test_the_heartbeat_is_replaced_whole(settings: Settings) -> None:
    write_reconciler_heartbeat(settings, 41, 1751371200.5)
    write_reconciler_heartbeat(settings, 42, 1751371202.5)
    assert _beat(settings) == {"passes": 42, "at": 1751371202.5, "pid": os.getpid()}
    assert stat.S_IMODE(settings.reconciler_heartbeat_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.run_dir.stat().st_mode) == 0o700
