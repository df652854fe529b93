"""``amr monitor metrics list`` and ``list-definitions``: a cache's Azure Monitor metrics, as
``az monitor metrics`` reads them.

The flags build the metrics query (az's defaults: the last ``--offset`` 1h at ``--interval`` 1m);
``-o table`` shows one line per metric, series and time stamp, with a column per aggregation and
an empty cell where there was no data.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from amr.cli.commands_activity_log import add_time_range_args
from amr.cli.common import add_output_args
from amr.cli.context import Context
from amr.cli.errors import CliError
from amr.cli.output import RawText, render_table

API_VERSION = "2024-02-01"
_SHORT_INTERVAL = re.compile(r"^(\d+)([mhd])$", re.IGNORECASE)


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("metrics", help="Read a cache's metrics (Azure Monitor's).")
    add_output_args(group)
    sub = group.add_subparsers(dest="metrics_command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("list", help="List the values of a cache's metrics over a time range.")
    _resource_args(p)
    p.add_argument("--metrics", nargs="+", required=True, help="Metric names (cachehits getcommands ...).")
    p.add_argument(
        "--aggregation", nargs="+", help="Average Count Maximum Minimum Total (default: each metric's own)."
    )
    p.add_argument("--interval", type=_interval, default="PT1M",
                   help="Time grain: 1m 5m 15m 30m 1h 6h 12h 1d, an ISO 8601 one (PT1M) or FULL (default 1m).")  # fmt: skip
    add_time_range_args(p, "1h")
    p.add_argument("--filter", help="Dimension filter, e.g. \"InstanceId eq '*'\" to split by node.")
    p.add_argument(
        "--dimension", nargs="+", help="Split by these dimensions (adds \"<dim> eq '*'\" to --filter)."
    )
    p.add_argument("--top", type=int, help="Most series per metric when split (default 10).")
    p.add_argument("--orderby", help="Order of split series: '<aggregation> asc|desc'.")
    p.add_argument("--metadata", action="store_true", help="Only the series' dimension values, no data.")
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)

    d = sub.add_parser(
        "list-definitions", help="List the metrics a cache has: units, aggregations, dimensions."
    )
    _resource_args(d)
    add_output_args(d)
    d.set_defaults(func=list_definitions, _parser=d)


def _resource_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resource", required=True, help="The cache: its resource id, or its name with -g.")
    p.add_argument("-g", "--resource-group", help="The cache's resource group, when --resource is a name.")
    p.add_argument("--namespace", help="Metric namespace (only Microsoft.Cache/redisEnterprise).")


def _interval(text: str) -> str:
    """az's short intervals (1m, 1h, 1d) as ISO 8601; anything else goes as written (the API checks)."""
    m = _SHORT_INTERVAL.match(text.strip())
    if m is None:
        return text.strip()
    amount, unit = m.groups()
    return f"P{amount}D" if unit.lower() == "d" else f"PT{amount}{unit.upper()}"


def _resource_url(ctx: Context, args: argparse.Namespace) -> str:
    resource = str(args.resource).strip()
    if resource.startswith("/"):
        return resource.rstrip("/")
    if not args.resource_group:
        raise CliError("--resource: give the cache's full resource id, or its name with -g <resource group>")
    return (
        f"/subscriptions/{ctx.client.subscription_id}/resourceGroups/{args.resource_group}"
        f"/providers/Microsoft.Cache/redisEnterprise/{resource}"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_query(args: argparse.Namespace, now: datetime) -> dict[str, str]:
    """The metrics query's parameters the flags ask for."""
    end = args.end_time or (args.start_time + args.offset if args.start_time else now)
    start = args.start_time or end - args.offset
    params = {
        "metricnames": ",".join(n.strip() for word in args.metrics for n in word.split(",") if n.strip()),
        "timespan": f"{_iso(start)}/{_iso(end)}",
        "interval": args.interval,
    }
    if args.aggregation:
        params["aggregation"] = ",".join(a for word in args.aggregation for a in word.split(",") if a)
    conditions = [args.filter] if args.filter else []
    conditions += [f"{d} eq '*'" for d in args.dimension or ()]
    if conditions:
        params["$filter"] = " and ".join(conditions)
    if args.top is not None:
        params["top"] = str(args.top)
    if args.orderby:
        params["orderby"] = args.orderby
    if args.metadata:
        params["resultType"] = "Metadata"
    if args.namespace:
        params["metricnamespace"] = args.namespace
    return params


def _rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """One table line per metric, series and time stamp."""
    rows = []
    for metric in answer.get("value", []):
        name = metric.get("name", {}).get("value", "")
        for series in metric.get("timeseries", []):
            dims = ", ".join(f"{m['name']['value']}={m['value']}" for m in series.get("metadatavalues", []))
            for point in series.get("data", [{}]):
                row: dict[str, Any] = {
                    "Timestamp": str(point.get("timeStamp", ""))[:19].replace("T", " "),
                    "Name": name,
                }
                if dims:
                    row["Dimensions"] = dims
                for key in ("average", "count", "maximum", "minimum", "total"):
                    if key in point or any(key in p for p in series.get("data", [])):
                        value = point.get(key)
                        row[key.capitalize()] = "" if value is None else f"{value:g}"
                rows.append(row)
    return rows


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    url = f"{_resource_url(ctx, args)}/providers/Microsoft.Insights/metrics?{urlencode(build_query(args, datetime.now(UTC)))}"
    answer = ctx.client.get(url, api_version=API_VERSION)
    if getattr(args, "output", "json") == "table" and not getattr(args, "query", None):
        return RawText(render_table(_rows(answer), sort_keys=False))
    return answer


def list_definitions(ctx: Context, args: argparse.Namespace) -> Any:
    url = f"{_resource_url(ctx, args)}/providers/Microsoft.Insights/metricDefinitions"
    definitions = ctx.client.get(url, api_version=API_VERSION).get("value", [])
    if getattr(args, "output", "json") == "table" and not getattr(args, "query", None):
        rows = [
            {"Name": d["name"]["value"], "DisplayName": d["name"]["localizedValue"], "Unit": d["unit"],
             "Aggregation": d["primaryAggregationType"],
             "Dimensions": ", ".join(x["value"] for x in d.get("dimensions", []))}
            for d in definitions
        ]  # fmt: skip
        return RawText(render_table(rows, sort_keys=False))
    return definitions
