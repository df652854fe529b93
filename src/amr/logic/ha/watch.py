"""The HA watch file (``AMR_HOME/ha/watch.json``): the control plane plans and renders it, the `amr ha`
coordinator parses it. The metric collector's watch (``AMR_HOME/monitor/watch.json``) has the same
format, with every database."""

from __future__ import annotations

import json
from typing import Any

from amr.errors import ConfigError
from amr.logic.render.routes import node_socket_path
from amr.logic.render.versioned_file import parse_versioned_json
from amr.model.enums import ProvisioningState, Toggle
from amr.model.ha import HaWatch, WatchedDatabase, WatchedNode, WatchedShard
from amr.model.resources import Cluster, Database

WATCH_FORMAT_VERSION = 1
WATCH_FILE_NAME = "watch.json"


def plan_ha_watch(
    databases: list[Database],
    clusters: dict[str, Cluster],
    run_dir: str,
    paused: frozenset[str] = frozenset(),
) -> HaWatch:
    """Decide which databases the coordinator keeps highly available: every database of a cache
    with highAvailability Enabled (clustered or not) that is not failed or being deleted (a delete
    stops nodes one by one, which must not look like a failure), with the nodes of each shard and
    whether it runs in cluster mode (how a replica is promoted). Databases named in ``paused`` (by
    uid: nodes converting to cluster mode restart on purpose) are left out. Roles are left out on purpose: they
    change with every failover, and the coordinator reads them from the nodes."""
    return _plan_watch(databases, clusters, run_dir, paused, ha_only=True)


def plan_monitor_watch(databases: list[Database], clusters: dict[str, Cluster], run_dir: str) -> HaWatch:
    """Decide which databases `amr monitord` samples: every database with nodes that is not failed or
    being deleted (whose nodes stop on purpose), HA or not, converting or not."""
    return _plan_watch(databases, clusters, run_dir, frozenset(), ha_only=False)


def _plan_watch(
    databases: list[Database],
    clusters: dict[str, Cluster],
    run_dir: str,
    paused: frozenset[str],
    ha_only: bool,
) -> HaWatch:
    watched = []
    for db in sorted(databases, key=lambda d: d.uid):
        cluster = clusters.get(db.cluster_key)
        if cluster is None or (ha_only and cluster.high_availability is not Toggle.ENABLED):
            continue
        if not db.nodes or db.uid in paused:
            continue
        if db.provisioning_state in (ProvisioningState.FAILED, ProvisioningState.DELETING):
            continue
        shards = tuple(
            WatchedShard(
                shard,
                tuple(
                    WatchedNode(n.name, node_socket_path(run_dir, n.name), n.port)
                    for n in sorted(db.nodes, key=lambda n: n.name)
                    if n.shard == shard
                ),
            )
            for shard in sorted({n.shard for n in db.nodes})
        )
        watched.append(WatchedDatabase(db.id, db.uid, shards, db.clustering_policy.cluster_mode))
    return HaWatch(tuple(watched))


def render_ha_watch(watch: HaWatch) -> str:
    """Render the watch as the JSON text of ha/watch.json."""
    body = {
        "version": WATCH_FORMAT_VERSION,
        "databases": [
            {
                "id": db.id,
                "uid": db.uid,
                "cluster": db.cluster,
                "shards": [
                    {
                        "shard": s.shard,
                        "nodes": [{"name": n.name, "socket": n.socket, "port": n.port} for n in s.nodes],
                    }
                    for s in db.shards
                ],
            }
            for db in watch.databases
        ],
    }
    return json.dumps(body, indent=2) + "\n"


def parse_ha_watch(text: str) -> HaWatch:
    """Parse ha/watch.json text; raise ConfigError saying what is wrong."""
    return parse_versioned_json(text, WATCH_FORMAT_VERSION, "HA watch file", ConfigError, _watch)


def _watch(data: Any) -> HaWatch:
    return HaWatch(
        tuple(
            WatchedDatabase(
                id=str(db["id"]),
                uid=str(db["uid"]),
                shards=tuple(
                    WatchedShard(
                        int(s["shard"]),
                        tuple(
                            WatchedNode(str(n["name"]), str(n["socket"]), int(n["port"])) for n in s["nodes"]
                        ),
                    )
                    for s in db["shards"]
                ),
                cluster=_flag(db.get("cluster", True)),
            )
            for db in data["databases"]
        )
    )


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"'cluster' must be true or false, not {value!r}")
    return value
