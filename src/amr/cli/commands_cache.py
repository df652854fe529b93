"""``amr redisenterprise``: clusters (az redisenterprise create|show|list|update|delete|list-skus-...)."""

from __future__ import annotations

import argparse
from typing import Any

from amr.cli import commands_database, commands_firewall
from amr.cli.common import add_no_wait, add_output_args, add_yes, drop_none, parse_tags, with_resource_group
from amr.cli.context import Context

ENABLED_DISABLED = ("Enabled", "Disabled")
TLS_VERSIONS = ("1.0", "1.1", "1.2")


def _name_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-name", "--name", "-n", dest="cluster_name", required=True)
    p.add_argument("-g", "--resource-group", required=True)


def _cluster_args(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument("--sku", required=create, help="e.g. Balanced_B5, MemoryOptimized_M10.")
    p.add_argument("--tags", nargs="*", help="Space-separated tags: key[=value] [key[=value] ...].")
    p.add_argument("--minimum-tls-version", choices=TLS_VERSIONS)
    p.add_argument("--high-availability", choices=ENABLED_DISABLED)
    p.add_argument(
        "--public-network-access",
        choices=ENABLED_DISABLED,
        default="Enabled" if create else None,
        help="Enabled (default on create) or Disabled.",
    )


def register(subparsers: Any) -> None:
    re_ = subparsers.add_parser(
        "redisenterprise", help="Manage Redis Enterprise clusters (Azure Managed Redis)."
    )
    add_output_args(re_)
    sub = re_.add_subparsers(dest="redisenterprise_command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("create", help="Create a cluster and (unless --no-database) its default database.")
    _name_args(p)
    p.add_argument("-l", "--location", required=True)
    _cluster_args(p, create=True)
    p.add_argument("--no-database", action="store_true", help="Create the cluster without a database.")
    commands_database.add_database_args(p, create=True)
    add_no_wait(p)
    add_output_args(p)
    p.set_defaults(func=create, _parser=p)

    p = sub.add_parser("show", help="Get a cluster and its databases.")
    _name_args(p)
    add_output_args(p)
    p.set_defaults(func=show, _parser=p)

    p = sub.add_parser("list", help="List clusters (in a resource group, or all).")
    p.add_argument("-g", "--resource-group")
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)

    p = sub.add_parser("update", help="Update a cluster.")
    _name_args(p)
    _cluster_args(p, create=False)
    add_no_wait(p)
    add_output_args(p)
    p.set_defaults(func=update, _parser=p)

    p = sub.add_parser("delete", help="Delete a cluster and its databases.")
    _name_args(p)
    add_yes(p)
    add_no_wait(p)
    add_output_args(p)
    p.set_defaults(func=delete, _parser=p)

    p = sub.add_parser("list-skus-for-scaling", help="List the SKUs this cluster can scale to.")
    _name_args(p)
    add_output_args(p)
    p.set_defaults(func=list_skus_for_scaling, _parser=p)

    commands_database.register(sub)
    commands_firewall.register(sub)


def _cluster_path(ctx: Context, args: argparse.Namespace) -> str:
    return ctx.client.cluster_path(args.resource_group, args.cluster_name)


def _with_databases(ctx: Context, cluster: dict[str, Any]) -> dict[str, Any]:
    """az's shape: the cluster plus a ``databases`` array (GET cluster + list databases)."""
    out = with_resource_group(cluster)
    cluster_id = cluster.get("id")
    if cluster_id:
        dbs = ctx.client.list(f"{cluster_id}/databases")
        out = {**out, "databases": [with_resource_group(db) for db in dbs]}
    else:
        out = {**out, "databases": []}
    return out


def create(ctx: Context, args: argparse.Namespace) -> Any:
    given = [d for d in commands_database.DATABASE_ARG_DESTS if getattr(args, d, None) is not None]
    if args.no_database and given:
        flags = ", ".join("--" + d.replace("_", "-") for d in given)
        raise argparse.ArgumentTypeError(f"--no-database conflicts with the database arguments: {flags}")
    body: dict[str, Any] = {
        "location": args.location,
        "sku": {"name": args.sku},
        "properties": drop_none(
            {
                "minimumTlsVersion": args.minimum_tls_version,
                "highAvailability": args.high_availability,
                # Required by the API on create; az defaults it too.
                "publicNetworkAccess": args.public_network_access or "Enabled",
            }
        ),
    }
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    # Parse the database flags before anything is created, so a typo fails fast.
    db_body = None if args.no_database else {"properties": commands_database.database_properties(args)}
    path = _cluster_path(ctx, args)
    if args.no_database:
        cluster = ctx.client.put(path, body, wait=not args.no_wait)
        return None if args.no_wait else _with_databases(ctx, cluster)
    # The database can only be created on a provisioned cluster, so the cluster is waited for even
    # with --no-wait; --no-wait then only skips waiting for the database.
    ctx.client.put(path, body, wait=True)
    ctx.client.put(f"{path}/databases/default", db_body, wait=not args.no_wait)
    if args.no_wait:
        return None
    return _with_databases(ctx, ctx.client.get(path))


def show(ctx: Context, args: argparse.Namespace) -> Any:
    return _with_databases(ctx, ctx.client.get(_cluster_path(ctx, args)))


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    clusters = ctx.client.list(ctx.client.cluster_path(args.resource_group))
    return [_with_databases(ctx, c) for c in clusters]


def update(ctx: Context, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {}
    if args.sku:
        body["sku"] = {"name": args.sku}
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    props = drop_none(
        {
            "minimumTlsVersion": args.minimum_tls_version,
            "highAvailability": args.high_availability,
            "publicNetworkAccess": args.public_network_access,
        }
    )
    if props:
        body["properties"] = props
    if not body:
        raise argparse.ArgumentTypeError(
            "specify at least one of --sku, --tags, --minimum-tls-version, --high-availability, "
            "--public-network-access"
        )
    result = ctx.client.patch(_cluster_path(ctx, args), body, wait=not args.no_wait)
    return None if args.no_wait else with_resource_group(result)


def delete(ctx: Context, args: argparse.Namespace) -> Any:
    ctx.confirm(args.yes)
    ctx.client.delete(_cluster_path(ctx, args), wait=not args.no_wait)
    return None


def list_skus_for_scaling(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.post(_cluster_path(ctx, args) + "/listSkusForScaling")
