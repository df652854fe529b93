"""``amr group``: resource groups (az group create|show|list|delete)."""

from __future__ import annotations

import argparse
from typing import Any

from amr.cli.client import RESOURCES_API_VERSION
from amr.cli.common import add_no_wait, add_output_args, add_yes, parse_tags
from amr.cli.context import Context

V = RESOURCES_API_VERSION


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("group", help="Manage resource groups.")
    add_output_args(group)
    sub = group.add_subparsers(dest="group_command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("create", help="Create a new resource group.")
    p.add_argument("-n", "--name", "--resource-group", "-g", dest="name", required=True)
    p.add_argument("-l", "--location", required=True)
    p.add_argument("--tags", nargs="*", help="Space-separated tags: key[=value] [key[=value] ...].")
    add_output_args(p)
    p.set_defaults(func=create, _parser=p)

    p = sub.add_parser("show", help="Get a resource group.")
    p.add_argument("-n", "--name", "--resource-group", "-g", dest="name", required=True)
    add_output_args(p)
    p.set_defaults(func=show, _parser=p)

    p = sub.add_parser("list", help="List resource groups.")
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)

    p = sub.add_parser("delete", help="Delete a resource group and everything in it.")
    p.add_argument("-n", "--name", "--resource-group", "-g", dest="name", required=True)
    add_yes(p)
    add_no_wait(p)
    add_output_args(p)
    p.set_defaults(func=delete, _parser=p)


def create(ctx: Context, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"location": args.location}
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    return ctx.client.put(ctx.client.group_path(args.name), body, api_version=V)


def show(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.get(ctx.client.group_path(args.name), api_version=V)


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.list(ctx.client.group_path(), api_version=V)


def delete(ctx: Context, args: argparse.Namespace) -> Any:
    ctx.confirm(args.yes)
    ctx.client.delete(ctx.client.group_path(args.name), api_version=V, wait=not args.no_wait)
    return None
