"""The command line of amr's service commands (``amr serve|stop|reload|pki|api|gateway|ha|monitord``)."""

from __future__ import annotations

import argparse

SERVICE_COMMANDS = ("serve", "stop", "reload", "api", "gateway", "ha", "monitord", "pki")
"""The first words handled by the service; any other is a command of the HTTPS client (amr.cli)."""

SERVICE_HELP = (
    "Service commands:\n"
    "  amr serve [--home DIR] [--api-port N] [--detach]   start amr (supervisor, API, gateway, databases)\n"
    "  amr stop [--home DIR]                              stop amr and every database process\n"
    "  amr pki rotate [--home DIR]                        issue a new server certificate (no downtime)\n"
)


def parse_worker_index(text: str) -> int:
    """The gateway worker index in ``text`` (the supervisor's ``AMR_GATEWAY_WORKER_INDEX``); 0 when
    empty or not a number, since the first worker runs without the variable."""
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def service_parser() -> argparse.ArgumentParser:
    """The parser of the service commands."""
    parser = argparse.ArgumentParser(prog="amr")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "start amr: the supervisor, the API, the gateway and every database"),
        ("stop", "stop amr and every process it runs"),
        ("reload", "restart the API, amr ha and amr monitord so they read amr.toml again"),
        ("api", "run the control plane (started by the supervisor)"),
        ("gateway", "run the data-plane gateway (started by the supervisor)"),
        ("ha", "run the failover coordinator of HA databases (started by the supervisor)"),
        ("monitord", "run the metric collector (started by the supervisor)"),
        ("pki", "manage the server certificate"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--home", help="AMR_HOME (default: $AMR_HOME or ~/.amr)")
        if name == "serve":
            p.add_argument("--api-port", type=int, help="HTTPS port of the management API (default 8443)")
            p.add_argument("--detach", action="store_true", help="run in the background and return")
        if name == "pki":
            p.add_argument(
                "action",
                choices=("rotate",),
                help="rotate: issue a new server certificate from the amr CA; the API and the gateway "
                "serve it to new connections within a second, open connections stay",
            )
    return parser
