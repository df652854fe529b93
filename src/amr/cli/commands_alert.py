"""``amr monitor alert list``: the metric alerts `amr monitord` fired (still fired first, then the
newest resolved), from ``Microsoft.AlertsManagement/alerts``. ``-o table`` shows one line per alert
with the value that fired or resolved it."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlencode

from amr.cli.common import add_output_args
from amr.cli.context import Context
from amr.cli.output import RawText, render_table

API_VERSION = "2019-05-05-preview"


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("alert", help="Read the metric alerts amr fired.")
    add_output_args(group)
    sub = group.add_subparsers(dest="alert_command", metavar="<command>")
    sub.required = True
    p = sub.add_parser("list", help="List fired and resolved metric alerts, newest first.")
    p.add_argument("--state", choices=("Fired", "Resolved"), help="Only alerts in this monitor condition.")
    p.add_argument("--resource-id", help="Only alerts of this cache (its full id).")
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)


def _rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for a in alerts:
        e = a["properties"]["essentials"]
        values = a["properties"].get("context", {}).get("values", [])
        rows.append({
            "Rule": a["name"], "Severity": e["severity"], "Condition": e["monitorCondition"],
            "Cache": e["targetResourceName"], "Fired": e["startDateTime"],
            "Resolved": e.get("monitorConditionResolvedDateTime") or "",
            "Value": ", ".join(f"{v['metricName']}={v['metricValue']:g}" for v in values),
        })  # fmt: skip
    return rows


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    params = {}
    if args.state:
        params["monitorCondition"] = args.state
    if args.resource_id:
        params["targetResource"] = args.resource_id
    url = f"/subscriptions/{ctx.client.subscription_id}/providers/Microsoft.AlertsManagement/alerts"
    if params:
        url += "?" + urlencode(params)
    alerts = ctx.client.get(url, api_version=API_VERSION).get("value", [])
    if getattr(args, "output", "json") == "table" and not getattr(args, "query", None):
        return RawText(render_table(_rows(alerts), sort_keys=False))
    return alerts
