"""The Prometheus exposition of `amr monitord`: ``GET /metrics`` on ``monitor.prometheus_host:port``.

It is served by the collector's own process, not by the API, so a Prometheus keeps scraping while
the control plane is stopped, like everything else about metrics. What it serves is what the
collector wrote to the metric store in its latest tick (``PrometheusView.record``, called after the
store's write succeeded), rendered by ``amr.logic.metrics.prometheus``.

Every request needs ``Authorization: Bearer <token>`` with the token in
``AMR_HOME/monitor/prometheus.token`` (mode 0600, made on first start; delete it and restart
`amr monitord` to change it): a listener on loopback is still reachable by every local user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from amr.errors import ConfigError
from amr.home import write_private
from amr.logic.metrics.azure import MetricValues, NodeInterval
from amr.logic.metrics.prometheus import (
    DatabaseMetrics,
    NodePlace,
    accumulate_totals,
    choose_scrape_answer,
    render_exposition,
)
from amr.model.ha import HaWatch

log = logging.getLogger(__name__)

TOKEN_FILE_NAME = "prometheus.token"

Asgi = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Mapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


@dataclass
class PrometheusView:
    """The latest sample of every watched database and its counters' totals since this process
    started, as the exposition shows them."""

    databases: dict[str, DatabaseMetrics] = field(default_factory=dict)
    last_sample: float | None = None

    def record(
        self,
        at: float,
        watch: HaWatch,
        values: Mapping[str, MetricValues],
        intervals: Mapping[str, list[NodeInterval]],
    ) -> None:
        """Take one tick's values (by database id) and its nodes' samples; a database no longer
        watched is forgotten with its totals."""
        databases = {}
        for db in watch.databases:
            answered = {n.node: n.sample.primary for n in intervals.get(db.id, [])}
            nodes = {n.name: NodePlace(s.shard, answered.get(n.name)) for s in db.shards for n in s.nodes}
            latest = values.get(db.id, {})
            before = self.databases.get(db.id)
            totals = accumulate_totals(before.totals if before is not None else {}, latest)
            databases[db.id] = DatabaseMetrics(db.id, latest, totals, nodes)
        self.databases = databases
        self.last_sample = at

    def exposition(self) -> str:
        return render_exposition(list(self.databases.values()), self.last_sample)


def read_scrape_token(path: Path) -> str:
    """The scrape token, made (random, mode 0600) when the file is missing."""
    try:
        token = path.read_text().strip() if path.exists() else ""
        if not token:
            token = secrets.token_urlsafe(32)
            write_private(path, token + "\n")
    except OSError as e:
        raise ConfigError(f"cannot read or write the Prometheus scrape token {path}: {e}") from e
    return token


def scrape_app(view: PrometheusView, token: str) -> Asgi:
    """The ASGI application answering scrapes (amr.logic.metrics.prometheus decides each request)."""

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        answer = choose_scrape_answer(scope["method"], scope["path"], headers.get("authorization", ""), token)
        body = (view.exposition() if answer.exposition else answer.message).encode()
        out = [(k.encode(), v.encode()) for k, v in answer.headers]
        if not answer.exposition:
            out.append((b"content-type", b"text/plain; charset=utf-8"))
        await send({"type": "http.response.start", "status": answer.status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app


class _Server(uvicorn.Server):
    """uvicorn inside the collector's loop: the collector handles SIGTERM and SIGINT, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_listener(host: str, port: int, quiet: bool = False) -> socket.socket | None:
    """The exposition's listening socket; None when it cannot be had (the port is taken, logged
    unless ``quiet``): the collector goes on without it, since collection must not depend on a
    scrape endpoint."""
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as e:
        if quiet:
            return None
        log.error(
            "cannot serve the Prometheus exposition on %s:%d: %s; metrics are still collected", host, port, e
        )
        return None


async def serve_exposition(
    view: PrometheusView, token: str, listener: socket.socket, stop: asyncio.Event
) -> None:
    """Answer scrapes on ``listener`` until ``stop`` is set."""
    config = uvicorn.Config(
        scrape_app(view, token),
        loop="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        limit_concurrency=16,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_server())
    host, port = listener.getsockname()[:2]
    log.info("serving the Prometheus exposition at http://%s:%d/metrics", host, port)
    try:
        await server.serve(sockets=[listener])
    finally:
        stopper.cancel()
        listener.close()
