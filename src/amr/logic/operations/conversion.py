"""Converting a NoCluster database to a clustered policy (OSSCluster, EnterpriseCluster) with its data.

The nodes of a NoCluster database run without cluster mode. Once the database record asks for a
clustered policy, each shard's data holder (its primary) restarts in cluster mode with its data (a
cluster node started with keys claims the slots they hash to); only then are the other nodes of the
shard (replicas) recreated empty in cluster mode, so they full-sync from it as cluster replicas and
never claim slots with data of their own. The replica keeps its copy until the primary runs clustered
with the data. The usual topology planning (amr.logic.operations.plan) then gives out the slots nobody owns and
makes the replicas replicate.

Each step is decided from what the nodes show (a running node's ``cluster_enabled``, a stopped node's
valkey.conf on disk), so a control plane that crashes halfway replans from where the nodes are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ConversionNode:
    """One node as the conversion sees it.

    ``clustered``: whether it runs in cluster mode (a running node's INFO cluster), or, for a node that
    is not running, whether its valkey.conf on disk enables cluster mode; None when neither is known
    (a node that was never started: it starts clustered like any new node)."""

    name: str
    shard: int
    running: bool  # the process runs and answers the admin user
    clustered: bool | None
    role: str | None = None  # ROLE of a running node: "master" or "slave"
    # The process runs but does not answer yet (starting, loading, busy): it may be the primary, so
    # nothing is decided for its shard until it answers.
    silent: bool = False


@dataclass(frozen=True)
class ConvertPrimary:
    """Restart the shard's data holder in cluster mode with its data. When it runs: pause writes and
    take a snapshot first (``save``; not with AOF on, whose file the engine flushes and reloads), so
    every acknowledged write is in what it loads."""

    name: str
    running: bool
    save: bool


@dataclass(frozen=True)
class RecreateEmpty:
    """Remove the node with its data files and start it again, empty, in cluster mode (it becomes a
    replica of the shard's converted primary)."""

    name: str


@dataclass(frozen=True)
class StartClustered:
    """Start a node whose valkey.conf is already in cluster mode (a crash stopped the conversion
    between writing it and the node answering); wait until it answers."""

    name: str


ConversionAction = ConvertPrimary | RecreateEmpty | StartClustered


def plan_conversion(
    nodes: Sequence[ConversionNode], store_primaries: Mapping[int, str], aof_enabled: bool
) -> list[ConversionAction]:
    """Decide the next conversion steps of a database that should run in cluster mode.

    Per shard: nothing when no node is left in non-cluster mode, or while a node of it runs without
    answering (it may be the primary). Nodes already clustered but stopped start first. If a node of the shard already runs clustered (the data holder was converted),
    every node still in non-cluster mode is recreated empty. Otherwise the data holder is converted
    first, alone: the running non-cluster master; if none is running as master, the only running node
    (it has the freshest copy); if none runs, the primary the store names (else the shard's first
    node). Several running nodes and no master is no clear holder: nothing is decided for the shard
    (``choose_conversion_blocker`` says why)."""
    actions: list[ConversionAction] = []
    for shard in sorted({n.shard for n in nodes}):
        members = sorted((n for n in nodes if n.shard == shard), key=lambda n: n.name)
        unconverted = [n for n in members if n.clustered is False]
        if not unconverted or any(n.silent for n in members):
            continue
        stopped = [n for n in members if n.clustered and not n.running]
        if stopped:
            actions += [StartClustered(n.name) for n in stopped]
            continue
        if any(n.clustered and n.running for n in members):
            actions += [RecreateEmpty(n.name) for n in unconverted]
            continue
        holder = _choose_holder(unconverted, store_primaries.get(shard))
        if holder is not None:
            actions.append(ConvertPrimary(holder.name, holder.running, holder.running and not aof_enabled))
    return actions


def _choose_holder(unconverted: list[ConversionNode], store_primary: str | None) -> ConversionNode | None:
    running = [n for n in unconverted if n.running]
    masters = [n for n in running if n.role == "master"]
    if len(masters) == 1:
        return masters[0]
    if masters:
        return None
    if len(running) == 1:
        return running[0]
    if running:
        return None
    named = [n for n in unconverted if n.name == store_primary]
    return named[0] if named else unconverted[0]


def choose_conversion_blocker(nodes: Sequence[ConversionNode]) -> str:
    """Why a conversion that still has non-cluster nodes cannot go on (no clear data holder); "" if
    nothing blocks it."""
    for shard in sorted({n.shard for n in nodes}):
        members = [n for n in nodes if n.shard == shard]
        unconverted = [n for n in members if n.clustered is False]
        if not unconverted or any(n.clustered for n in members):
            continue
        silent = sorted(n.name for n in members if n.silent)
        if silent:
            return f"shard {shard}: {', '.join(silent)} runs but does not answer"
        if _choose_holder(unconverted, None) is None and any(n.running for n in unconverted):
            names = ", ".join(sorted(n.name for n in unconverted if n.running))
            return f"shard {shard} has no single primary to keep the data of ({names} running)"
    return ""


def parse_cluster_enabled(info: str) -> bool | None:
    """``cluster_enabled`` of an ``INFO cluster`` reply; None if it is not there."""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cluster_enabled":
            return value.strip() == "1"
    return None


def parse_conf_cluster_enabled(conf: str | None) -> bool | None:
    """Whether a valkey.conf text enables cluster mode; None when there is no config."""
    if conf is None:
        return None
    for line in conf.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].lower() == "cluster-enabled":
            return words[1].strip('"').lower() == "yes"
    return False
