"""Observing nodes into snapshots and executing planned actions on them."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from amr.errors import NodeError
from amr.logic.operations.foreign_nodes import BumpEpoch, ClusterForget
from amr.logic.operations.node_actions import (
    Action,
    AddSlots,
    ClusterMeet,
    ClusterReplicate,
    ConfigSet,
    EnsureNode,
    RemoveSnapshot,
    SetDefaultUser,
    SetInternalUser,
    Snapshot,
    WaitCluster,
    WaitPersistence,
    WaitReady,
    WriteConfig,
)
from amr.logic.operations.node_state import ObservedNode, ObservedUser
from amr.logic.security.node_credentials import INTERNAL_USERS, REPLICATION_USER
from amr.logic.topology.resharding import parse_cluster_nodes
from amr.model.node import NodeSpec, ProcessState
from amr.nodes.backend import NodeBackend

log = logging.getLogger(__name__)

_LIVE_PARAMETERS = (
    "maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "save", "replica-announce-ip",
    "rdbcompression", "loglevel", "client-output-buffer-limit", "maxmemory-clients",
    "cluster-announce-hostname", "cluster-announce-client-ipv4", "cluster-preferred-endpoint-type",
)  # fmt: skip


async def observe_node(backend: NodeBackend, spec: NodeSpec, cluster_mode: bool) -> ObservedNode:
    """One node as it is now; a node that does not answer is observed as not ready."""
    status = await backend.node_status(spec.name)
    if status.state is not ProcessState.RUNNING:
        return ObservedNode(spec.name, status.state)
    admin = backend.admin(spec)
    try:
        config_reply: Any = await admin.execute("CONFIG", "GET", *_LIVE_PARAMETERS)
        config = _pairs(config_reply)
        user: Any = await admin.execute("ACL", "GETUSER", "default")
        user_info = _pairs(user)
        flags = user_info.get("flags") or []
        hashes = frozenset(user_info.get("passwords") or [])
        internal_users = {}
        for name in INTERNAL_USERS:
            reply: Any = await admin.execute("ACL", "GETUSER", name)
            if reply:
                info = _pairs(reply)
                internal_users[name] = ObservedUser(
                    "on" in (info.get("flags") or []),
                    frozenset(str(h) for h in info.get("passwords") or []),
                    str(info.get("commands") or ""),
                )
        role: Any = await admin.execute("ROLE")
        observed = ObservedNode(
            spec.name,
            status.state,
            ready=True,
            config={k: str(v) for k, v in config.items()},
            default_user_on="on" in flags,
            default_user_hashes=hashes,
            default_user_commands=str(user_info["commands"]) if user_info.get("commands") else None,
            role=str(role[0]) if isinstance(role, list) and role else None,
            internal_users=internal_users,
            config_file=await backend.read_config(spec),
            snapshot_on_disk=await backend.snapshot_exists(spec),
        )
        if cluster_mode:
            observed = await _observe_cluster(admin, observed)
        return observed
    except NodeError as e:
        log.debug("node %s not answering: %s", spec.name, e)
        return ObservedNode(spec.name, status.state)
    finally:
        await admin.close()


async def _observe_cluster(admin: Any, observed: ObservedNode) -> ObservedNode:
    info = str(await admin.execute("CLUSTER", "INFO"))
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    nodes_text = str(await admin.execute("CLUSTER", "NODES"))
    my_id = None
    primary_id = None
    known = set()
    my_slots = 0
    my_ranges: tuple[tuple[int, int], ...] = ()
    for line in nodes_text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, flags, master = parts[0], parts[2].split(","), parts[3]
        if "handshake" in flags or "noaddr" in flags:
            continue
        known.add(node_id)
        if "myself" in flags:
            my_id = node_id
            primary_id = master if master != "-" else None
            my_slots = _count_slots(parts[8:])
            my_ranges = _slot_ranges(parts[8:])
    return dataclasses.replace(
        observed,
        cluster_id=my_id,
        cluster_known_ids=frozenset(known),
        cluster_slots_assigned=my_slots,
        cluster_slot_ranges=my_ranges,
        cluster_state_ok=fields.get("cluster_state", "").strip() == "ok",
        cluster_slots_seen=_int_or_none(fields.get("cluster_slots_assigned")),
        cluster_primary_id=primary_id,
        cluster_nodes=tuple(
            line for line in parse_cluster_nodes(nodes_text, keep_noaddr=True) if not line.myself
        ),
    )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(str(text).strip()) if text is not None else None
    except ValueError:
        return None


_PERSISTENCE_BUSY = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")


async def _wait_persistence(admin: Any, spec: NodeSpec, timeout: float) -> None:
    """Poll INFO persistence until no AOF rewrite or snapshot is running or scheduled; raise NodeError
    if the engine reports the last one failed or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await admin.execute("INFO", "persistence")
        fields = info if isinstance(info, dict) else _info_fields(str(info))
        if not any(str(fields.get(k, "0")) not in ("0", "") for k in _PERSISTENCE_BUSY):
            for status in ("aof_last_bgrewrite_status", "rdb_last_bgsave_status"):
                if str(fields.get(status, "ok")) != "ok":
                    raise NodeError(f"node {spec.name}: {status.replace('_', ' ')} is {fields[status]}")
            return
        if loop.time() >= deadline:
            raise NodeError(f"node {spec.name}: AOF rewrite or snapshot still running after {timeout:g} s")
        await asyncio.sleep(0.05)


def _info_fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _count_slots(ranges: list[str]) -> int:
    total = 0
    for r in ranges:
        if r.startswith("["):
            continue  # a slot being migrated
        low, _, high = r.partition("-")
        total += int(high or low) - int(low) + 1
    return total


def _slot_ranges(items: list[str]) -> tuple[tuple[int, int], ...]:
    ranges = []
    for r in items:
        if r.startswith("["):
            continue
        low, _, high = r.partition("-")
        ranges.append((int(low), int(high or low)))
    return tuple(ranges)


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return reply
    items = list(reply or [])
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


async def execute_action(backend: NodeBackend, action: Action, start_timeout: float) -> None:
    """Carry out one planned action; raise NodeError with the engine's reason on failure."""
    if isinstance(action, EnsureNode):
        await backend.ensure_node(action.spec)
        return
    if isinstance(action, WaitReady):
        await backend.wait_ready(action.spec, start_timeout)
        return
    if isinstance(action, WriteConfig):
        await backend.ensure_node(action.spec)  # writes valkey.conf; never restarts a running node
        return
    if isinstance(action, WaitCluster):
        await asyncio.sleep(0.05)
        return
    if isinstance(action, RemoveSnapshot):
        await backend.remove_snapshot(action.spec)
        return
    admin = backend.admin(action.spec)
    try:
        if isinstance(action, WaitPersistence):
            await _wait_persistence(admin, action.spec, start_timeout * 4)
        elif isinstance(action, Snapshot):
            await admin.execute("BGSAVE", "SCHEDULE")
        elif isinstance(action, ConfigSet):
            await admin.execute("CONFIG", "SET", action.parameter, action.value)
        elif isinstance(action, SetDefaultUser):
            await admin.execute("ACL", "SETUSER", "default", *action.rule)
            if action.disconnect_clients:
                await admin.execute("CLIENT", "KILL", "USER", "default")
        elif isinstance(action, SetInternalUser):
            await admin.execute("ACL", "SETUSER", action.user, *action.rule)
            if action.replication_auth:
                await admin.execute(
                    "CONFIG", "SET", "primaryuser", REPLICATION_USER, "primaryauth", action.replication_auth
                )
        elif isinstance(action, AddSlots):
            more = [bound for r in action.more for bound in r]
            await admin.execute("CLUSTER", "ADDSLOTSRANGE", action.first, action.last, *more)
        elif isinstance(action, ClusterMeet):
            await admin.execute("CLUSTER", "MEET", action.host, action.port)
        elif isinstance(action, ClusterReplicate):
            await admin.execute("CLUSTER", "REPLICATE", action.primary_id)
        elif isinstance(action, ClusterForget):
            try:
                await admin.execute("CLUSTER", "FORGET", action.node_id)
            except NodeError as e:
                # Gone already (another node's forget reached it first): the next look decides.
                log.info("CLUSTER FORGET %s on %s: %s", action.node_id, action.spec.name, e)
        elif isinstance(action, BumpEpoch):
            await admin.execute("CLUSTER", "BUMPEPOCH")
    finally:
        await admin.close()
