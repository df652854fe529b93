"""A metrics query of Azure Monitor (``GET {resource}/providers/Microsoft.Insights/metrics``) read from
its query string: which metrics, over which time span, at which time grain, with which aggregations,
split or selected by which dimension values, sorted and cut how. Every mistake is an ARM 400 that says
what to write instead; nothing here reads the store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from amr.errors import ArmError
from amr.logic.metrics.azure import METRICS, MetricDefinition

AGGREGATIONS = ("Average", "Count", "Maximum", "Minimum", "Total")
# Azure Monitor's time grains (metricAvailabilities), in seconds; FULL is the whole time span.
TIME_GRAINS = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT6H": 21600,
               "PT12H": 43200, "P1D": 86400}  # fmt: skip
FULL = "FULL"
DEFAULT_SPAN = 3600  # Azure's default time span: the last hour
DEFAULT_TOP = 10
_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_CONDITION = re.compile(r"^\s*(?P<name>[A-Za-z][\w.]*)\s+(?P<op>\w+)\s+'(?P<value>[^']*)'\s*$")
_FILTER_EXAMPLE = "InstanceId eq '*' (split by node) or InstanceId eq 'd1-0-0' (that node only)"


def _bad(message: str, target: str) -> ArmError:
    return ArmError("BadRequest", message, 400, target)


@dataclass(frozen=True)
class MetricsQuery:
    """What a metrics request asks for. ``grain`` is None for FULL (one value for the whole span);
    ``dimensions`` maps each dimension named in ``$filter`` (Azure's spelling) to the values to keep,
    or None for all of them (``'*'``); every named dimension splits the series."""

    metrics: tuple[MetricDefinition, ...]
    start: float
    end: float
    grain: int | None
    aggregations: tuple[str, ...] | None  # None: each metric's primary aggregation
    dimensions: Mapping[str, tuple[str, ...] | None]
    top: int
    order_by: tuple[str, bool] | None  # (aggregation, descending)
    metadata_only: bool
    validate_dimensions: bool = True


def parse_duration(text: str, target: str) -> float:
    """Seconds of an ISO 8601 duration (PT1M, P1D, PT24H, P1DT2H); months and years are refused
    because their length depends on the date."""
    found = _DURATION.match(text.strip())
    if not found or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise _bad(f"'{text}' is not an ISO 8601 duration such as PT1M, PT1H or P1D.", target)
    parts = {k: float(v) for k, v in found.groupdict().items() if v}
    return (
        parts.get("w", 0) * 604800
        + parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )


def parse_time(text: str, target: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise _bad(f"'{text}' is not an ISO 8601 time such as 2026-01-01T00:00:00Z.", target) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_timespan(text: str | None, now: float) -> tuple[float, float]:
    """The [start, end) of ``timespan``: ``start/end``, ``start/duration`` or ``duration/end``
    (ISO 8601); none: the last hour."""
    if not text:
        return now - DEFAULT_SPAN, now
    first, sep, second = text.partition("/")
    if not sep or not first.strip() or not second.strip():
        raise _bad(
            f"The timespan '{text}' is not start/end in ISO 8601, for example "
            "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z (or start/PT24H).",
            "timespan",
        )
    if first.strip().upper().startswith("P"):
        end = parse_time(second, "timespan")
        start = end - parse_duration(first, "timespan")
    else:
        start = parse_time(first, "timespan")
        is_duration = second.strip().upper().startswith("P")
        end = start + parse_duration(second, "timespan") if is_duration else parse_time(second, "timespan")
    if end <= start:
        raise _bad(
            f"The timespan '{text}' ends before it starts; give start/end with start first.", "timespan"
        )
    return start, end


def parse_interval(text: str | None, auto_adjust: bool = False) -> int | None:
    """The time grain in seconds (None: FULL). Azure's grains only; with ``AutoAdjustTimegrain`` a
    duration between them becomes the next larger grain."""
    if not text:
        return TIME_GRAINS["PT1M"]
    if text.strip().upper() == FULL:
        return None
    allowed = ", ".join((*TIME_GRAINS, FULL))
    try:
        seconds = parse_duration(text, "interval")
    except ArmError:
        raise _bad(f"The interval '{text}' is not a time grain; use one of {allowed}.", "interval") from None
    if seconds in TIME_GRAINS.values():
        return int(seconds)
    larger = [g for g in TIME_GRAINS.values() if g >= seconds]
    if auto_adjust and larger:
        return larger[0]
    raise _bad(
        f"The interval '{text}' is not a time grain Azure Monitor has; use one of {allowed}.", "interval"
    )


def render_duration(seconds: int | None) -> str:
    """A time grain as Azure names it (PT1M, PT1H, P1D); FULL for None."""
    if seconds is None:
        return FULL
    return next(name for name, s in TIME_GRAINS.items() if s == seconds)


def render_time(seconds: float) -> str:
    """An instant as Azure writes it: 2026-01-01T00:00:00Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def parse_metric_names(text: str | None) -> tuple[MetricDefinition, ...]:
    """The metrics asked for, in the order given (case-insensitive); none: the first one, as Azure
    answers with a default metric."""
    by_name = {m.name.lower(): m for m in METRICS}
    if not text or not _names(text):
        return (METRICS[0],)
    chosen, unknown = [], []
    for name in _names(text):
        found = by_name.get(name.lower())
        if found is None:
            unknown.append(name)
        elif found not in chosen:
            chosen.append(found)
    if unknown:
        raise _bad(
            f"Unknown metric name(s) {', '.join(repr(u) for u in unknown)}: namespace "
            f"Microsoft.Cache/redisEnterprise has {', '.join(m.name for m in METRICS)}.",
            "metricnames",
        )
    return tuple(chosen)


def parse_aggregations(text: str | None) -> tuple[str, ...] | None:
    """The aggregations asked for (case-insensitive, Azure's spelling back); none: None."""
    if not text or not _names(text):
        return None
    by_name = {a.lower(): a for a in AGGREGATIONS}
    chosen: list[str] = []
    for name in _names(text):
        found = by_name.get(name.lower())
        if found is None:
            raise _bad(
                f"Unknown aggregation '{name}': use one or more of {', '.join(AGGREGATIONS)} (comma separated).",
                "aggregation",
            )
        if found not in chosen:
            chosen.append(found)
    return tuple(chosen)


def _split_top(text: str, word: str) -> list[str]:
    """``text`` cut at ``word`` (and/or) outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    tokens = re.split(r"(\s+|')", text)
    for token in tokens:
        if token == "'":
            quoted = not quoted
        if not quoted and token.lower() == word:
            parts.append("".join(current))
            current = []
            continue
        current.append(token)
    if quoted:
        raise _bad(f"The $filter '{text}' has an unclosed quote. Example: {_FILTER_EXAMPLE}.", "$filter")
    parts.append("".join(current))
    return parts


def parse_dimension_filter(text: str | None, known: tuple[str, ...]) -> dict[str, tuple[str, ...] | None]:
    """The dimension values ``$filter`` keeps: conditions ``Dim eq 'value'`` joined by ``and``, with
    ``or`` between values of one dimension (Azure's rule); ``'*'`` keeps every value. ``known``:
    the dimensions any metric has, in Azure's spelling."""
    if not text or not text.strip():
        return {}
    spelling = {k.lower(): k for k in known}
    chosen: dict[str, tuple[str, ...] | None] = {}
    for clause in _split_top(text, "and"):
        clause = clause.strip()
        while clause.startswith("(") and clause.endswith(")"):
            clause = clause[1:-1].strip()
        dimension: str | None = None
        values: list[str] = []
        for condition in _split_top(clause, "or"):
            found = _CONDITION.match(condition.strip().strip("()"))
            if not found:
                raise _bad(
                    f"The $filter '{text}' does not parse: each condition is <dimension> eq '<value>'. "
                    f"Example: {_FILTER_EXAMPLE}.",
                    "$filter",
                )
            name = spelling.get(found["name"].lower())
            if name is None:
                raise _bad(
                    f"The $filter names dimension '{found['name']}', which these metrics do not have; "
                    f"their dimensions are {', '.join(known) or 'none'}.",
                    "$filter",
                )
            if found["op"].lower() != "eq":
                raise _bad(
                    f"The $filter compares {name} with '{found['op']}'; only 'eq' is supported.", "$filter"
                )
            if dimension is not None and name != dimension:
                raise _bad(
                    "In the $filter, 'or' may only join values of one dimension (Azure's rule).", "$filter"
                )
            dimension = name
            values.append(found["value"])
        assert dimension is not None
        if dimension in chosen:
            raise _bad(f"The $filter gives {dimension} twice; join its values with 'or'.", "$filter")
        chosen[dimension] = None if "*" in values else tuple(values)
    return chosen


def parse_order_by(text: str | None) -> tuple[str, bool] | None:
    """``orderby``: one aggregation and asc/desc (default desc)."""
    if not text or not text.strip():
        return None
    words = text.split()
    by_name = {a.lower(): a for a in AGGREGATIONS}
    aggregation = by_name.get(words[0].lower())
    direction = words[1].lower() if len(words) > 1 else "desc"
    if aggregation is None or len(words) > 2 or direction not in ("asc", "desc"):
        raise _bad(
            f"The orderby '{text}' is not '<aggregation> asc|desc' with an aggregation of "
            f"{', '.join(AGGREGATIONS)}.",
            "orderby",
        )
    return aggregation, direction == "desc"


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise _bad(f"{name} is true or false, not '{value}'.", name)
    return value.lower() == "true"


def plan_metrics_query(query: Mapping[str, str], now: float) -> MetricsQuery:
    """The query a metrics request's parameters (as sent; names without regard to case) ask for."""
    params = {k.lower(): v for k, v in query.items()}
    metrics = parse_metric_names(params.get("metricnames"))
    namespace = params.get("metricnamespace")
    if namespace and namespace.lower() != "microsoft.cache/redisenterprise":
        raise _bad(
            f"Unknown metric namespace '{namespace}': use Microsoft.Cache/redisEnterprise.", "metricnamespace"
        )
    start, end = parse_timespan(params.get("timespan"), now)
    grain = parse_interval(
        params.get("interval"), _flag(params.get("autoadjusttimegrain"), "AutoAdjustTimegrain", False)
    )
    known = tuple(dict.fromkeys(d for m in METRICS for d in m.dimensions))
    top_text = params.get("top")
    if top_text is not None and (not top_text.isdigit() or int(top_text) < 1):
        raise _bad(f"top is a whole number from 1, not '{top_text}'.", "top")
    result_type = params.get("resulttype") or "Data"
    if result_type.lower() not in ("data", "metadata"):
        raise _bad(f"resultType is Data or Metadata, not '{result_type}'.", "resultType")
    if grain is not None and (end - start) / grain > 100_000:
        raise _bad("The timespan holds more than 100,000 intervals; use a larger interval.", "interval")
    return MetricsQuery(
        metrics=metrics,
        start=start,
        end=end,
        grain=grain,
        aggregations=parse_aggregations(params.get("aggregation")),
        dimensions=parse_dimension_filter(params.get("$filter"), known),
        top=int(top_text) if top_text else DEFAULT_TOP,
        order_by=parse_order_by(params.get("orderby")),
        metadata_only=result_type.lower() == "metadata",
        validate_dimensions=_flag(params.get("validatedimensions"), "ValidateDimensions", True),
    )


def render_timespan(start: float, end: float) -> str:
    """A time span as Azure echoes it: start/end."""
    return f"{render_time(start)}/{render_time(end)}"


def choose_window(start: float, end: float, grain: int | None) -> tuple[int, int]:
    """The buckets' [first start, end): anchored at the end rounded up to the grain (UTC-aligned), so
    that the newest, still filling bucket of a query that ends now is there, with as many buckets as
    the span needs (a span of whole grains has exactly span/grain however it is offset: 24 h at
    PT1M, 1,440; a span shorter than a grain its one bucket). FULL: the whole span, to the second."""
    if grain is None:
        return int(start), max(math.ceil(end), int(start) + 1)
    last = math.ceil(end / grain) * grain
    count = max(1, math.ceil((end - start) / grain))
    return last - count * grain, last
