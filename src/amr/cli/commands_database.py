"""``amr redisenterprise database``: the cluster's database (az redisenterprise database ...)."""

from __future__ import annotations

import argparse
import shlex
from typing import Any
from urllib.parse import quote

from amr.cli.common import (
    add_no_wait,
    add_output_args,
    add_yes,
    drop_none,
    parse_modules,
    parse_persistence,
    with_resource_group,
)
from amr.cli.context import Context
from amr.cli.output import RawText

CLIENT_PROTOCOLS = ("Encrypted", "Plaintext")
CLUSTERING_POLICIES = ("EnterpriseCluster", "OSSCluster", "NoCluster")
EVICTION_POLICIES = (
    "AllKeysLFU",
    "AllKeysLRU",
    "AllKeysRandom",
    "VolatileLRU",
    "VolatileLFU",
    "VolatileTTL",
    "VolatileRandom",
    "NoEviction",
)
ENABLED_DISABLED = ("Enabled", "Disabled")

# Names of the argparse destinations that make up the database part of `redisenterprise create`.
DATABASE_ARG_DESTS = (
    "client_protocol",
    "port",
    "clustering_policy",
    "eviction_policy",
    "persistence",
    "modules",
    "access_keys_authentication",
)


def add_database_args(p: argparse.ArgumentParser, *, create: bool) -> None:
    """The database flags; create-only ones (port, modules) only when ``create``."""
    g = p.add_argument_group("Database Arguments")
    g.add_argument(
        "--client-protocol", choices=CLIENT_PROTOCOLS, help="Encrypted (TLS, default) or Plaintext."
    )
    if create:
        g.add_argument("--port", type=int, help="TCP port of the database endpoint (default: a free port).")
    g.add_argument(
        "--clustering-policy",
        choices=CLUSTERING_POLICIES,
        help=(
            "OSSCluster (default), EnterpriseCluster or NoCluster."
            if create
            else "Only a NoCluster database changes its policy: to OSSCluster or EnterpriseCluster, data "
            "kept (its nodes restart in cluster mode; clients reconnect once)."
        ),
    )
    g.add_argument("--eviction-policy", choices=EVICTION_POLICIES)
    g.add_argument(
        "--persistence",
        nargs="+",
        metavar="KEY=VALUE",
        help="aof-enabled=true aof-frequency=1s|always, or rdb-enabled=true rdb-frequency=1h|6h|12h.",
    )
    if create:
        g.add_argument(
            "--modules",
            nargs="+",
            action="append",
            metavar="KEY=VALUE",
            help='name=RedisBloom args="ERROR_RATE 0.02 INITIAL_SIZE 400" (repeatable).',
        )
    g.add_argument("--access-keys-authentication", choices=ENABLED_DISABLED)


def database_properties(args: argparse.Namespace) -> dict[str, Any]:
    """The ``properties`` of a database PUT/PATCH: only what the user gave."""
    return drop_none(
        {
            "clientProtocol": getattr(args, "client_protocol", None),
            "port": getattr(args, "port", None),
            "clusteringPolicy": getattr(args, "clustering_policy", None),
            "evictionPolicy": getattr(args, "eviction_policy", None),
            "persistence": parse_persistence(getattr(args, "persistence", None)),
            "modules": parse_modules(getattr(args, "modules", None)),
            "accessKeysAuthentication": getattr(args, "access_keys_authentication", None),
        }
    )


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-name", required=True, help="Name of the Redis Enterprise cluster.")
    p.add_argument("-g", "--resource-group", required=True)
    p.add_argument("--database-name", default="default", help="Name of the database (default: default).")


def register(subparsers: Any) -> None:
    database = subparsers.add_parser("database", help="Manage the cluster's database.")
    add_output_args(database)
    sub = database.add_subparsers(dest="database_command", metavar="<command>")
    sub.required = True

    def leaf(name: str, help_: str, func: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_)
        _db_args(p)
        add_output_args(p)
        p.set_defaults(func=func, _parser=p)
        return p

    p = leaf("create", "Create a database.", create)
    add_database_args(p, create=True)
    add_no_wait(p)
    leaf("show", "Get a database.", show)
    p = sub.add_parser("list", help="List the databases of a cluster.")
    p.add_argument("--cluster-name", required=True)
    p.add_argument("-g", "--resource-group", required=True)
    add_output_args(p)
    p.set_defaults(func=list_, _parser=p)
    p = leaf("update", "Update a database.", update)
    add_database_args(p, create=False)
    add_no_wait(p)
    p = leaf("delete", "Delete a database.", delete)
    add_yes(p)
    add_no_wait(p)
    leaf("list-keys", "Show the access keys of a database.", list_keys)
    p = leaf("regenerate-key", "Regenerate an access key.", regenerate_key)
    p.add_argument("--key-type", required=True, choices=("Primary", "Secondary"))
    add_no_wait(p)
    p = leaf("flush", "Delete all keys in the database.", flush)
    p.add_argument("--linked-ids", nargs="+", help="Resource ids of linked databases to flush too.")
    add_yes(p)
    add_no_wait(p)
    p = leaf(
        "restart",
        "Restart the database's nodes (an amr extension). --rolling restarts one node at a time with a "
        "switchover per shard: a database with high availability keeps serving and loses no write.",
        restart,
    )
    p.add_argument(
        "--rolling",
        action="store_true",
        help="One node at a time, replica first, then a switchover. Without it every node restarts at "
        "once and the data comes back only from persistence.",
    )
    add_no_wait(p)
    p = leaf(
        "upgrade-db-redis-version",
        "Upgrade the database's engine: a rolling restart onto the binary engine.server_binary names.",
        upgrade_db_redis_version,
    )
    add_no_wait(p)
    p = leaf(
        "connection-events",
        "Show recent connection events (connects, denials, auth results, disconnects) from the gateway's audit log.",
        connection_events,
    )
    p.add_argument("--top", type=int, default=100, help="How many of the newest events (default 100).")
    p = leaf(
        "events",
        "Show the database's history: node restarts, recoveries, repairs and failovers, oldest first.",
        events,
    )
    p.add_argument("--top", type=int, default=100, help="How many of the newest events (default 100).")
    p = leaf(
        "show-connection", "Show how to connect to the database (host, port, TLS, key).", show_connection
    )
    p.add_argument(
        "--format",
        choices=("json", "env", "redis-py"),
        default="json",
        help="json (default), env (shell export lines) or redis-py (a Python snippet).",
    )


def _path(ctx: Context, args: argparse.Namespace) -> str:
    return ctx.client.database_path(args.resource_group, args.cluster_name, args.database_name)


def connection_events(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.list(f"{_path(ctx, args)}/connectionEvents?$top={args.top}")


def events(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.list(f"{_path(ctx, args)}/events?$top={args.top}")


def create(ctx: Context, args: argparse.Namespace) -> Any:
    body = {"properties": database_properties(args)}
    result = ctx.client.put(_path(ctx, args), body, wait=not args.no_wait)
    return None if args.no_wait else with_resource_group(result)


def show(ctx: Context, args: argparse.Namespace) -> Any:
    return with_resource_group(ctx.client.get(_path(ctx, args)))


def list_(ctx: Context, args: argparse.Namespace) -> Any:
    path = ctx.client.database_path(args.resource_group, args.cluster_name)
    return [with_resource_group(db) for db in ctx.client.list(path)]


def update(ctx: Context, args: argparse.Namespace) -> Any:
    props = database_properties(args)
    if not props:
        raise argparse.ArgumentTypeError(
            "specify at least one of --client-protocol, --clustering-policy, --eviction-policy, "
            "--persistence, --access-keys-authentication"
        )
    result = ctx.client.patch(_path(ctx, args), {"properties": props}, wait=not args.no_wait)
    return None if args.no_wait else with_resource_group(result)


def delete(ctx: Context, args: argparse.Namespace) -> Any:
    ctx.confirm(args.yes)
    ctx.client.delete(_path(ctx, args), wait=not args.no_wait)
    return None


def list_keys(ctx: Context, args: argparse.Namespace) -> Any:
    return ctx.client.post(_path(ctx, args) + "/listKeys")


def regenerate_key(ctx: Context, args: argparse.Namespace) -> Any:
    path = _path(ctx, args)
    result = ctx.client.post(path + "/regenerateKey", {"keyType": args.key_type}, wait=not args.no_wait)
    if args.no_wait:
        return None
    if not (isinstance(result, dict) and "primaryKey" in result):
        # Answered as an LRO without the keys in the final body: ask for them.
        result = ctx.client.post(path + "/listKeys")
    return result


def flush(ctx: Context, args: argparse.Namespace) -> Any:
    ctx.confirm(args.yes)
    body = {"ids": args.linked_ids} if args.linked_ids else None
    result = ctx.client.post(_path(ctx, args) + "/flush", body, wait=not args.no_wait)
    return result or None


def _restart(ctx: Context, args: argparse.Namespace, action: str, body: Any) -> Any:
    response = ctx.client.request("POST", f"{_path(ctx, args)}/{action}", json_body=body)
    if args.no_wait:
        return None
    ctx.client.wait_for(response)  # raises the operation's error if it failed
    status_url = response.headers.get("Azure-AsyncOperation")
    # The operation's status says what was done (properties.message).
    return ctx.client.get(status_url) if status_url else None


def restart(ctx: Context, args: argparse.Namespace) -> Any:
    return _restart(ctx, args, "restart", {"rolling": bool(args.rolling)})


def upgrade_db_redis_version(ctx: Context, args: argparse.Namespace) -> Any:
    return _restart(ctx, args, "upgradeDBRedisVersion", None)


def connection_info(ctx: Context, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Gather host, port, TLS and key of a database; returns (info, database properties)."""
    client = ctx.client
    cluster = client.get(client.cluster_path(args.resource_group, args.cluster_name))
    db_path = _path(ctx, args)
    database = client.get(db_path)
    cprops = (cluster or {}).get("properties") or {}
    dprops = (database or {}).get("properties") or {}
    host = cprops.get("hostName") or "localhost"
    port = dprops.get("port")
    ssl = (dprops.get("clientProtocol") or "Encrypted") != "Plaintext"
    password = None
    if dprops.get("accessKeysAuthentication") == "Enabled":
        keys = client.post(db_path + "/listKeys") or {}
        password = keys.get("primaryKey")
    scheme = "rediss" if ssl else "redis"
    auth = f":{quote(password, safe='')}@" if password else ""
    info = {
        "host": host,
        "port": port,
        "ssl": ssl,
        "password": password,
        "caFile": ctx.ca_file if ssl else None,
        "redisUrl": f"{scheme}://{auth}{host}:{port}",
    }
    return info, dprops


def show_connection(ctx: Context, args: argparse.Namespace) -> Any:
    info, dprops = connection_info(ctx, args)
    if dprops.get("accessKeysAuthentication") != "Enabled":
        ctx.warn(
            f"access keys authentication is disabled for database '{args.database_name}', so there is no "
            "password to show. Enable it with: amr redisenterprise database update "
            f"--cluster-name {shlex.quote(args.cluster_name)} -g {shlex.quote(args.resource_group)} "
            "--access-keys-authentication Enabled"
        )
    if args.format == "env":
        return RawText(render_env(info))
    if args.format == "redis-py":
        return RawText(render_redis_py(info, dprops.get("clusteringPolicy")))
    return info


def render_env(info: dict[str, Any]) -> str:
    lines = [
        f"export AMR_HOST={shlex.quote(str(info['host']))}",
        f"export AMR_PORT={shlex.quote(str(info['port']))}",
    ]
    if info.get("password"):
        lines.append(f"export AMR_PASSWORD={shlex.quote(str(info['password']))}")
    lines.append(f"export AMR_SSL={'true' if info['ssl'] else 'false'}")
    if info["ssl"] and info.get("caFile"):
        lines.append(f"export SSL_CERT_FILE={shlex.quote(str(info['caFile']))}")
    return "\n".join(lines) + "\n"


def render_redis_py(info: dict[str, Any], clustering_policy: str | None) -> str:
    cls = "RedisCluster" if (clustering_policy or "OSSCluster") == "OSSCluster" else "Redis"
    kwargs = [f"host={info['host']!r}", f"port={info['port']!r}"]
    if info.get("password"):
        kwargs.append(f"password={info['password']!r}")
    if info["ssl"]:
        kwargs.append("ssl=True")
        if info.get("caFile"):
            kwargs.append(f"ssl_ca_certs={info['caFile']!r}")
    args = ", ".join(kwargs)
    return f"import redis\n\nr = redis.{cls}({args})\nprint(r.ping())\n"
