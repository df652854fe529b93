"""``amr redisenterprise firewall-rule``: who may connect to a cache (an amr extension, in the shape
of classic Azure Cache for Redis' ``az redis firewall-rules``)."""

from __future__ import annotations

import argparse
from typing import Any

from amr.cli.common import add_output_args, add_yes, with_resource_group
from amr.cli.context import Context


def register(subparsers: Any) -> None:
    rule = subparsers.add_parser(
        "firewall-rule",
        help="Manage firewall rules: with none, every source may connect; with some, only theirs.",
    )
    add_output_args(rule)
    sub = rule.add_subparsers(dest="firewall_command", metavar="<command>")
    sub.required = True

    def leaf(name: str, help_: str, func: Any, *, named: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_)
        p.add_argument("--cluster-name", required=True)
        p.add_argument("-g", "--resource-group", required=True)
        if named:
            p.add_argument("--rule-name", "-n", "--name", dest="rule_name", required=True)
        add_output_args(p)
        p.set_defaults(func=func, _parser=p)
        return p

    p = leaf("create", "Create or update a rule allowing sources from --start-ip to --end-ip.", create)
    p.add_argument("--start-ip", required=True, help="First allowed address (IPv4 or IPv6).")
    p.add_argument("--end-ip", required=True, help="Last allowed address (same family as --start-ip).")
    leaf("show", "Get a firewall rule.", show)
    leaf("list", "List the firewall rules of a cache.", list_, named=False)
    p = leaf("delete", "Delete a firewall rule.", delete)
    add_yes(p)


def _path(ctx: Context, args: argparse.Namespace, rule: bool = True) -> str:
    base = ctx.client.cluster_path(args.resource_group, args.cluster_name) + "/firewallRules"
    return f"{base}/{args.rule_name}" if rule else base


def create(ctx: Context, args: argparse.Namespace) -> Any:
    body = {"properties": {"startIP": args.start_ip, "endIP": args.end_ip}}
    return with_resource_group(ctx.client.put(_path(ctx, args), body))


def show(ctx: Context, args: argparse.Namespace) -> Any:
    return with_resource_group(ctx.client.get(_path(ctx, args)))


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    return [with_resource_group(r) for r in ctx.client.list(_path(ctx, args, rule=False))]


def delete(ctx: Context, args: argparse.Namespace) -> Any:
    ctx.confirm(args.yes)
    ctx.client.delete(_path(ctx, args))
    return None
