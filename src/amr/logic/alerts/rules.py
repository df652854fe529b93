"""The values Azure accepts in a metric alert rule and an action group, checked one by one with ARM
400s that name the field and say what to write instead. Nothing here reads the store: whether a
scope or an action group exists is the API's question."""

from __future__ import annotations

from urllib.parse import urlsplit

from amr.errors import InvalidParameter
from amr.logic.metrics.azure import METRICS, NAMESPACE, MetricDefinition
from amr.logic.metrics.query import parse_duration

OPERATORS = ("Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual")
TIME_AGGREGATIONS = ("Average", "Count", "Maximum", "Minimum", "Total")
# Azure Monitor's evaluation frequencies and window sizes for metric alerts, in seconds.
FREQUENCIES = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600}
WINDOW_SIZES = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT6H": 21600,
                "PT12H": 43200, "P1D": 86400}  # fmt: skip
SINGLE_RESOURCE_CRITERIA = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
STATIC_CRITERION = "StaticThresholdCriterion"
DIMENSION_OPERATORS = ("Include", "Exclude")
MAX_CRITERIA = 5  # Azure's limit for single-resource rules


def _choose(value: str, allowed: tuple[str, ...], target: str) -> str:
    for a in allowed:
        if a.lower() == value.lower():
            return a
    raise InvalidParameter(f"The value '{value}' of '{target}' is not valid. Allowed values: {', '.join(allowed)}.",
                           target=target)  # fmt: skip


def validate_operator(value: str, target: str) -> str:
    """Azure's spelling of a static threshold operator."""
    return _choose(value, OPERATORS, target)


def validate_time_aggregation(value: str, target: str) -> str:
    """Azure's spelling of a criterion's time aggregation."""
    return _choose(value, TIME_AGGREGATIONS, target)


def validate_dimension_operator(value: str, target: str) -> str:
    """Include or Exclude."""
    return _choose(value, DIMENSION_OPERATORS, target)


def _duration(value: str, allowed: dict[str, int], target: str) -> tuple[str, int]:
    seconds = parse_duration(value, target)  # a 400 for text that is no ISO 8601 duration
    for name, length in allowed.items():
        if length == seconds:
            return name, length
    raise InvalidParameter(f"'{target}' is {value}; Azure accepts {', '.join(allowed)}.", target=target)


def validate_frequency(value: str) -> tuple[str, int]:
    """An evaluation frequency Azure accepts, in its spelling, and its seconds."""
    return _duration(value, FREQUENCIES, "properties.evaluationFrequency")


def validate_window(value: str, frequency_seconds: int) -> tuple[str, int]:
    """A window size Azure accepts, no shorter than the evaluation frequency."""
    name, seconds = _duration(value, WINDOW_SIZES, "properties.windowSize")
    if seconds < frequency_seconds:
        raise InvalidParameter(
            f"'properties.windowSize' ({name}) is shorter than 'properties.evaluationFrequency': a window "
            "must be at least as long as the time between evaluations.",
            target="properties.windowSize",
        )
    return name, seconds


def validate_severity(value: int) -> int:
    """0 (critical) to 4 (verbose)."""
    if not 0 <= value <= 4:
        raise InvalidParameter(
            f"'properties.severity' is {value}; use 0 (critical) to 4 (verbose).",
            target="properties.severity",
        )
    return value


def validate_metric(name: str, namespace: str | None, target: str) -> MetricDefinition:
    """The metric a criterion names, which must be one of the cache's (namespace
    Microsoft.Cache/redisEnterprise); matched without regard to case, as Azure does."""
    if namespace is not None and namespace.lower() != NAMESPACE.lower():
        raise InvalidParameter(
            f"'{target}.metricNamespace' is '{namespace}'; the metrics of a cache are in '{NAMESPACE}'.",
            target=f"{target}.metricNamespace",
        )
    for m in METRICS:
        if m.name.lower() == name.lower():
            return m
    raise InvalidParameter(
        f"'{target}.metricName' is '{name}', which is not a metric of {NAMESPACE}. Valid names: "
        f"{', '.join(m.name for m in METRICS)}.",
        target=f"{target}.metricName",
    )


def validate_threshold(value: object, target: str) -> float:
    """A number (JSON numbers only: a string or a boolean is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter(
            f"'{target}.threshold' must be a number such as 80 or 0.5, not {type(value).__name__}.",
            target=f"{target}.threshold",
        )
    return float(value)


def validate_webhook_uri(value: str, target: str) -> str:
    """An absolute http or https URL with a host."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"'{target}' must be an http or https URL such as https://example.com/alerts, not '{value}'.",
            target=target,
        )
    return value


def validate_short_name(value: str) -> str:
    """An action group's short name: 1 to 12 characters."""
    if not 1 <= len(value) <= 12:
        raise InvalidParameter(
            "'properties.groupShortName' must have 1 to 12 characters (it is shown in notifications).",
            target="properties.groupShortName",
        )
    return value


def _parse_id(text: str, provider: str, kind: str, example: str, target: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of ``/subscriptions/{s}/resourceGroups/{g}/providers/
    {provider}/{kind}/{name}``, provider and kind matched without regard to case."""
    parts = text.strip("/").split("/")
    shape = ("subscriptions", None, "resourcegroups", None, "providers", provider.lower(), kind.lower(), None)
    if (
        len(parts) != len(shape)
        or not all(parts)
        or any(want is not None and got.lower() != want for want, got in zip(shape, parts, strict=True))
    ):
        raise InvalidParameter(
            f"'{target}' holds '{text}', which is not {example} "
            f"(/subscriptions/{{id}}/resourceGroups/{{group}}/providers/{provider}/{kind}/{{name}}).",
            target=target,
        )
    return parts[1], parts[3], parts[-1]


def parse_cache_scope(scope: str) -> tuple[str, str, str]:
    """(subscription, resource group, cache name) of a cache's resource id, the only scope a rule
    may have; a 400 for anything else."""
    return _parse_id(
        scope, "Microsoft.Cache", "redisEnterprise", "a cache's resource id", "properties.scopes"
    )


def parse_action_group_id(text: str, target: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of an action group's resource id."""
    return _parse_id(text, "microsoft.insights", "actionGroups", "an action group's id", target)
