"""Azure Monitor's metrics wire shapes (api-version 2024-02-01 and the earlier ones the official
clients send): the metrics ``Response``, ``MetricDefinitionCollection`` and
``MetricNamespaceCollection``, as azure-mgmt-monitor's models and the REST spec's examples have them."""

from __future__ import annotations

from typing import Any

from amr.logic.metrics.aggregate import TimeSeries
from amr.logic.metrics.azure import NAMESPACE, MetricDefinition
from amr.logic.metrics.query import (
    AGGREGATIONS,
    TIME_GRAINS,
    MetricsQuery,
    render_duration,
    render_time,
    render_timespan,
)

# Every api-version of Microsoft.Insights metrics, metricDefinitions and metricNamespaces that
# azure-mgmt-monitor (2024-02-01), az and older SDKs send.
METRICS_API_VERSIONS = (
    "2016-06-01", "2016-09-01", "2017-05-01-preview", "2017-12-01-preview", "2018-01-01", "2019-07-01",
    "2021-05-01", "2023-10-01", "2024-02-01",
)  # fmt: skip
_AGGREGATION_KEYS = {a: a.lower() for a in AGGREGATIONS}
NAMESPACE_NAME = NAMESPACE.replace("/", "-")


def _name(value: str, localized: str) -> dict[str, str]:
    return {"value": value, "localizedValue": localized}


def render_metric(
    resource_id: str, metric: MetricDefinition, series: list[TimeSeries], metadata_only: bool
) -> dict[str, Any]:
    """One metric of a metrics Response with its time series."""
    timeseries = []
    for s in series:
        element: dict[str, Any] = {
            "metadatavalues": [{"name": _name(d, d), "value": v} for d, v in s.dimensions]
        }
        if not metadata_only:
            element["data"] = [
                {"timeStamp": render_time(t), **{_AGGREGATION_KEYS[a]: v for a, v in values.items()}}
                for t, values in s.data
            ]
        timeseries.append(element)
    return {
        "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{metric.name}",
        "type": "Microsoft.Insights/metrics",
        "name": _name(metric.name, metric.display_name),
        "displayDescription": metric.display_name,
        "unit": metric.unit,
        "timeseries": timeseries,
        "errorCode": "Success",
    }


def render_metrics_response(
    resource_id: str, location: str, query: MetricsQuery, metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    """The metrics Response around its metrics."""
    return {
        "cost": 0,
        "timespan": render_timespan(query.start, query.end),
        "interval": render_duration(query.grain),
        "namespace": NAMESPACE,
        "resourceregion": location,
        "value": metrics,
    }


def render_metric_definition(
    resource_id: str, metric: MetricDefinition, retention_days: float
) -> dict[str, Any]:
    """One MetricDefinition: every grain is kept as long as the store's one-minute rollups."""
    retention = f"P{max(1, int(retention_days))}D"
    return {
        "id": f"{resource_id}/providers/microsoft.insights/metricdefinitions/{metric.name}",
        "resourceId": resource_id,
        "namespace": NAMESPACE,
        "name": _name(metric.name, metric.display_name),
        "displayDescription": metric.display_name,
        "isDimensionRequired": False,
        "unit": metric.unit,
        "primaryAggregationType": metric.aggregation,
        "supportedAggregationTypes": list(AGGREGATIONS),
        "metricAvailabilities": [{"timeGrain": g, "retention": retention} for g in TIME_GRAINS],
        "dimensions": [_name(d, d) for d in metric.dimensions],
    }


def render_metric_namespace(resource_id: str) -> dict[str, Any]:
    """The one metric namespace a cache has."""
    return {
        "id": f"{resource_id}/providers/microsoft.insights/metricNamespaces/{NAMESPACE_NAME}",
        "name": NAMESPACE_NAME,
        "type": "Microsoft.Insights/metricNamespaces",
        "classification": "Platform",
        "properties": {"metricNamespaceName": NAMESPACE},
    }
