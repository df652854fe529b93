"""``amr monitor activity-log list``: the activity log, as ``az monitor activity-log list`` reads it.

The flags build Azure's ``$filter`` (``--filters`` gives one verbatim); the entries come newest first,
at most ``--max-events`` of them, following nextLink. ``-o table`` shows one readable line per entry.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from amr.cli.common import add_output_args
from amr.cli.context import Context
from amr.cli.output import RawText, render_table
from amr.errors import ArmError
from amr.logic.arm.activity_filter import parse_event_time, parse_offset, render_activity_filter

API_VERSION = "2015-04-01"


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "activity-log", help="Read the activity log: who changed what, and how it ended."
    )
    add_output_args(group)
    sub = group.add_subparsers(dest="activity_log_command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("list", help="List activity log entries, newest first.")
    p.add_argument("-g", "--resource-group", help="Entries of this resource group.")
    p.add_argument("--resource-id", help="Entries of this resource (its full id).")
    p.add_argument("--namespace", "--resource-provider", dest="resource_provider",
                   help="Entries of this resource provider (Microsoft.Cache, Microsoft.Resources).")  # fmt: skip
    p.add_argument("--correlation-id", help="Entries of the requests with this correlation id.")
    p.add_argument("--caller", help="Entries of this caller (a principal's application id).")
    p.add_argument("--status", help="Entries with this status: Started, Accepted, Succeeded or Failed.")
    add_time_range_args(p, "6h")
    p.add_argument("--max-events", type=_positive, default=50, help="Most entries to list (default 50).")
    p.add_argument("--select", nargs="+", help="Only these properties of each entry (caller status ...).")
    p.add_argument(
        "--filters", help="An OData $filter sent as given (the other filter flags are then ignored)."
    )
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)


def add_time_range_args(p: argparse.ArgumentParser, offset: str) -> None:
    """az's time range flags: --start-time, --end-time and --offset (default ``offset``)."""
    p.add_argument(
        "--start-time", type=_time("--start-time"), help="ISO 8601 start (default: --offset before the end)."
    )
    p.add_argument(
        "--end-time",
        type=_time("--end-time"),
        help="ISO 8601 end (default: now, or --offset after the start).",
    )
    p.add_argument("--offset", type=_offset, default=offset,
                   help=f"Length of the time range when one end is not given: ##d##h##m (default {offset}).")  # fmt: skip


def _time(flag: str) -> Any:
    def parse(text: str) -> datetime:
        try:
            return parse_event_time(text)
        except ArmError:
            raise argparse.ArgumentTypeError(
                f"{flag}: '{text}' is not an ISO 8601 time; write it like 2026-01-01T00:00:00Z"
            ) from None

    return parse


def _offset(text: str) -> Any:
    try:
        return parse_offset(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--offset: {e}") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--max-events: expected a whole number from 1, got {text!r}")
    return int(text)


def build_filter(args: argparse.Namespace, now: datetime) -> str:
    """The $filter the flags ask for: the time range (az's defaults: the last --offset) and every
    match given."""
    if args.filters:
        return str(args.filters)
    offset = parse_offset(args.offset) if isinstance(args.offset, str) else args.offset
    end = args.end_time or (args.start_time + offset if args.start_time else now)
    start = args.start_time or end - offset
    matches = (
        ("resourceGroupName", args.resource_group),
        ("resourceUri", args.resource_id),
        ("resourceProvider", args.resource_provider),
        ("correlationId", args.correlation_id),
        ("caller", args.caller),
        ("status", args.status),
    )
    return render_activity_filter(start, end, matches)


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry as a table line: when, how it ended, what, by whom, on what, under which correlation."""
    resource = str(entry.get("resourceId") or "")
    # The part a person reads: after the provider's namespace (redisEnterprise/c/databases/default),
    # or the group itself.
    _, sep, tail = resource.partition("/providers/")
    short = tail.split("/", 1)[-1] if sep else resource.rsplit("/", 2)[-1]
    return {
        "Time": str(entry.get("eventTimestamp") or "")[:19].replace("T", " "),
        "Status": (entry.get("status") or {}).get("value", ""),
        "Operation": (entry.get("operationName") or {}).get("value", ""),
        "Caller": entry.get("caller", ""),
        "ResourceGroup": entry.get("resourceGroupName", ""),
        "Resource": short,
        "CorrelationId": entry.get("correlationId", ""),
    }


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    params = {"$filter": build_filter(args, datetime.now(UTC))}
    if args.select:
        # az's --select takes words (and commas inside them); the API wants one comma list.
        params["$select"] = ",".join(w.strip() for word in args.select for w in word.split(",") if w.strip())
    url = f"/subscriptions/{ctx.client.subscription_id}/providers/Microsoft.Insights/eventtypes/management/values"
    pages = ctx.client.iter_pages(f"{url}?{urlencode(params)}", api_version=API_VERSION)
    entries = list(islice(pages, args.max_events))
    if getattr(args, "output", "json") == "table" and not getattr(args, "query", None) and not args.select:
        return RawText(render_table([_row(e) for e in entries], sort_keys=False))
    return entries
