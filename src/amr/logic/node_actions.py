"""What the reconciler can do to a database's nodes: the actions ``amr.logic.plan`` decides and
``amr.reconciler.nodes`` carries out. Every action is idempotent, so a crash halfway just replans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amr.logic.foreign_nodes import BumpEpoch, ClusterForget
from amr.model.node import NodeSpec


@dataclass(frozen=True)
class EnsureNode:
    spec: NodeSpec


@dataclass(frozen=True)
class WaitReady:
    spec: NodeSpec


@dataclass(frozen=True)
class ConfigSet:
    spec: NodeSpec
    parameter: str
    value: str


@dataclass(frozen=True)
class WriteConfig:
    """Rewrite the node's valkey.conf to match its spec (a running node is not restarted), so a
    restart keeps what live changes set."""

    spec: NodeSpec


@dataclass(frozen=True)
class Snapshot:
    """Start an RDB snapshot (BGSAVE SCHEDULE): RDB persistence was just switched on, and the engine
    would otherwise take its first snapshot only after a whole period."""

    spec: NodeSpec


@dataclass(frozen=True)
class RemoveSnapshot:
    """Delete an RDB file left from when persistence was on: with persistence off the node would load
    it at its next start and bring back old data."""

    spec: NodeSpec


@dataclass(frozen=True)
class WaitPersistence:
    """Wait until the engine has no AOF rewrite or snapshot in progress or scheduled: after AOF is
    switched on, the AOF is only complete (and the mode in force) once its first rewrite is done."""

    spec: NodeSpec


@dataclass(frozen=True)
class SetDefaultUser:
    spec: NodeSpec
    rule: tuple[str, ...]
    disconnect_clients: bool


@dataclass(frozen=True)
class SetInternalUser:
    """Set one of amr's users on a node (``ACL SETUSER``). For the replication user, the node's own
    ``primaryuser``/``primaryauth`` follow (``replication_auth``), so that a replica still logs in to
    its primary after the user changed (a node an older amr started)."""

    spec: NodeSpec
    user: str
    rule: tuple[str, ...]
    replication_auth: str = field(default="", repr=False)


@dataclass(frozen=True)
class AddSlots:
    """Assign the hash slots ``first``..``last`` (inclusive), and the ranges in ``more``, to a
    shard's primary (one command: a converted database's primary may miss thousands of ranges)."""

    spec: NodeSpec
    first: int
    last: int
    more: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ClusterMeet:
    spec: NodeSpec
    host: str
    port: int


@dataclass(frozen=True)
class ClusterReplicate:
    spec: NodeSpec
    primary_id: str


@dataclass(frozen=True)
class WaitCluster:
    """Nothing to do but let the cluster bus converge (gossip, state ok)."""

    spec: NodeSpec
    reason: str


Action = (
    EnsureNode
    | WaitReady
    | WriteConfig
    | ConfigSet
    | Snapshot
    | RemoveSnapshot
    | WaitPersistence
    | SetDefaultUser
    | SetInternalUser
    | AddSlots
    | ClusterMeet
    | ClusterReplicate
    | WaitCluster
    | ClusterForget
    | BumpEpoch
)


def describe_actions(actions: Sequence[Action]) -> str:
    """A one-line outcome for logs and tests."""
    if not actions:
        return "in sync"
    return ", ".join(f"{type(a).__name__}({a.spec.name})" for a in actions)
