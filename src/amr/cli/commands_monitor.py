"""``amr monitor``: what amr records about the resources it runs (``az monitor``'s commands)."""

from __future__ import annotations

from typing import Any

from amr.cli import commands_activity_log, commands_alert, commands_metrics
from amr.cli.common import add_output_args


def register(subparsers: Any) -> None:
    monitor = subparsers.add_parser(
        "monitor", help="Read the activity log, metrics and alerts (as az monitor)."
    )
    add_output_args(monitor)
    sub = monitor.add_subparsers(dest="monitor_command", metavar="<command>")
    sub.required = True
    commands_activity_log.register(sub)
    commands_metrics.register(sub)
    commands_alert.register(sub)
