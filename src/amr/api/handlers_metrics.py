"""Azure Monitor metrics of a cache: ``{cache id}/providers/Microsoft.Insights/metrics``,
``metricDefinitions`` and ``metricNamespaces``, read from the metric store `amr monitord` writes. The
cache must exist (404 ResourceNotFound otherwise); the metrics query is planned and aggregated in
``amr.logic.metrics`` (query, aggregate)."""

from __future__ import annotations

from amr.api.context import Request, Response
from amr.api.handlers_clusters import find_cluster
from amr.api.wire_metrics import (
    render_metric,
    render_metric_definition,
    render_metric_namespace,
    render_metrics_response,
)
from amr.logic.metrics.azure import METRICS
from amr.logic.metrics.query import plan_metrics_query


async def list_metrics(req: Request) -> Response:
    cluster = find_cluster(req)
    s = req.services
    query = plan_metrics_query(req.query, s.now().timestamp())
    answer = await s.metrics.query(cluster.id.lower(), query)
    metrics = [render_metric(cluster.id, m, series, query.metadata_only) for m, series in answer]
    return Response(200, render_metrics_response(cluster.id, cluster.location, query, metrics))


async def list_metric_definitions(req: Request) -> Response:
    cluster = find_cluster(req)
    days = req.services.settings.monitor.rollup_retention_days
    return Response(200, {"value": [render_metric_definition(cluster.id, m, days) for m in METRICS]})


async def list_metric_namespaces(req: Request) -> Response:
    cluster = find_cluster(req)
    return Response(200, {"value": [render_metric_namespace(cluster.id)]})
