"""The `amr monitord` process: samples every database at ``monitor.sample_interval`` into the metric
store until SIGTERM or SIGINT.

It needs only the watch file the control plane writes (``AMR_HOME/monitor/watch.json``, every
database and its nodes), its own master secret (``monitor.secret``: it derives the ``amr-monitor``
passwords and no other) and the gateway workers' sockets, so it keeps sampling while the API is
stopped. Samples are taken on multiples of the interval (wall clock), so every database's points
line up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from pathlib import Path

from amr.errors import ConfigError, MetricStoreError
from amr.home import FollowedFile
from amr.logic.alerts.files import RULES_FILE_NAME, STATE_FILE_NAME
from amr.logic.ha.watch import WATCH_FILE_NAME, parse_ha_watch
from amr.logic.security.node_credentials import CredentialMasters
from amr.model.ha import HaWatch
from amr.monitor.alerts import AlertEvaluator
from amr.monitor.collector import Collector
from amr.monitor.nodes import read_gateway
from amr.monitor.prometheus import (
    TOKEN_FILE_NAME,
    PrometheusView,
    bind_listener,
    read_scrape_token,
    serve_exposition,
)
from amr.monitor.store import MetricStore
from amr.monitor.webhooks import WebhookSender
from amr.settings import Settings
from amr.signals import stop_on_signals

log = logging.getLogger(__name__)

# Seconds between attempts to bind the Prometheus port while it is taken.
EXPOSITION_RETRY = 5.0

STORE_FILE_NAME = "metrics.db"


class MonitorWatch:
    """The collector's watch as the file says now (an empty one while it is missing or unreadable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = FollowedFile(path)
        self._watch = HaWatch()

    def read(self) -> HaWatch:
        look = self._file.look()
        if not look.changed:
            return self._watch
        if look.error or look.text is None:
            log.warning(
                "no monitor watch file at %s (the control plane writes it): sampling nothing", self.path
            )
            self._watch = HaWatch()
            return self._watch
        try:
            self._watch = parse_ha_watch(look.text)
        except ConfigError as e:
            log.warning("cannot read the monitor watch file %s: %s; sampling nothing", self.path, e)
            self._watch = HaWatch()
            return self._watch
        log.info(
            "monitor watch: %d database(s), %d node(s)",
            len(self._watch.databases),
            sum(len(s.nodes) for db in self._watch.databases for s in db.shards),
        )
        return self._watch


def open_store(settings: Settings) -> MetricStore:
    """The metric store of this AMR_HOME, with the retention settings."""
    m = settings.monitor
    return MetricStore(settings.monitor_dir / STORE_FILE_NAME, m.raw_retention_hours, m.rollup_retention_days)


async def serve(settings: Settings, monitor_master: str, stop: asyncio.Event | None = None) -> None:
    """Sample until ``stop`` is set (or SIGTERM/SIGINT)."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    interval = max(settings.monitor.sample_interval, 0.1)
    store = open_store(settings)
    watch = MonitorWatch(settings.monitor_dir / WATCH_FILE_NAME)
    run_dir, workers = settings.run_dir, settings.gateway.workers
    timeout = min(interval / 2, 5.0)
    collector = Collector(
        watch=watch.read,
        store=store,
        password_for=CredentialMasters(monitor=monitor_master).monitor_for,
        gateway=lambda: read_gateway(run_dir, workers, timeout),
        interval=interval,
        timeout=timeout,
        view=PrometheusView(),
    )
    log.info("metric collector started: every %.1f s into %s", interval, store.path)
    exposition = _start_exposition(settings, collector.view, stop)
    alerts = asyncio.create_task(evaluate_alerts(settings, store, stop))
    last = ""
    try:
        while not stop.is_set():
            now = time.time()
            # The next multiple of the interval on the wall clock.
            wait = interval - now % interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                break
            try:
                outcome = await collector.tick(time.time())
            except MetricStoreError as e:
                outcome = f"cannot write the metric store: {e}"
                log.error("%s", outcome)
            if outcome != last:
                log.info("%s", outcome)
                last = outcome
    finally:
        stop.set()
        await alerts
        if exposition is not None:
            await exposition
        collector.close()
        store.close()
        log.info("metric collector stopped")


ALERT_CLOCK = 1.0  # seconds between two looks at which rules are due


async def evaluate_alerts(settings: Settings, store: MetricStore, stop: asyncio.Event) -> None:
    """Evaluate the metric alert rules until ``stop``: beside the collector, in the same process
    (the metric store's one writer), on its own clock so that neither delays the other."""
    m = settings.monitor
    sender = WebhookSender(m.webhook_timeout, m.webhook_attempts, m.webhook_backoff)
    evaluator = AlertEvaluator(
        settings.monitor_dir / RULES_FILE_NAME,
        settings.monitor_dir / STATE_FILE_NAME,
        store,
        sender,
        m.alert_time_scale,
        lambda: str(uuid.uuid4()),
    )
    try:
        while not stop.is_set():
            try:
                for outcome in evaluator.tick(time.time()):
                    log.info("%s", outcome)
            except Exception:
                # A failed evaluation (the store busy, a bad file) must stop neither metric
                # collection nor the next evaluation.
                log.exception("alert evaluation failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ALERT_CLOCK)
    finally:
        await sender.close()


def _start_exposition(
    settings: Settings, view: PrometheusView | None, stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """Serve the Prometheus exposition beside the collector (None: turned off). A port that is taken
    is tried again every ``EXPOSITION_RETRY`` seconds: it may be free soon (another program's
    passing connection), and collection goes on meanwhile."""
    m = settings.monitor
    if view is None or not m.prometheus_port:
        return None
    try:
        token = read_scrape_token(settings.monitor_dir / TOKEN_FILE_NAME)
    except ConfigError as e:
        log.error("%s; the Prometheus exposition is off, metrics are still collected", e)
        return None

    async def bind_and_serve() -> None:
        listener = bind_listener(m.prometheus_host, m.prometheus_port)
        while listener is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), EXPOSITION_RETRY)
            if stop.is_set():
                return
            listener = bind_listener(m.prometheus_host, m.prometheus_port, quiet=True)
        log.info("serving the Prometheus exposition on %s:%d", m.prometheus_host, m.prometheus_port)
        await serve_exposition(view, token, listener, stop)

    return asyncio.create_task(bind_and_serve())


def run_monitor(settings: Settings, monitor_master: str) -> None:
    """Run the collector in this process until SIGTERM or SIGINT (blocking)."""
    asyncio.run(serve(settings, monitor_master))
