"""What the reconciler wants of a database's nodes and what it saw of them: the host facts a node's
spec depends on, a node's target (its spec and the live settings to hold), and an observed node.

These types are shared by the decisions that read them (``plan``, ``foreign_nodes``,
``database_pass``); they live apart so that those decisions import them without importing each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from amr.logic.render.announce import ClientAnnouncement
from amr.logic.render.valkey_conf import InternalUser
from amr.logic.security.node_credentials import DatabaseCredentials
from amr.logic.topology.resharding import ClusterNodeLine
from amr.model.node import NodeSpec, ProcessState


@dataclass(frozen=True)
class NodeEnvironment:
    """Host facts a node's spec depends on."""

    nodes_dir: str
    run_dir: str
    internal_host: str
    public_host: str
    # The passwords of amr's own users on this database's nodes (amr.logic.security.node_credentials).
    credentials: DatabaseCredentials
    max_memory_bytes: int
    # The SKU's client connections, plus room for amr's own (admin, replication, cluster bus).
    max_clients: int = 10000
    # How long a restarted primary of an HA database waits for its replica's promotion.
    rejoin_wait_ms: int = 0
    # Slots of the database are migrating between its shards (see ``render_moving_slots_settings``).
    moving_slots: bool = False
    # What clustered nodes tell clients about where nodes are (None: the engine cannot say more
    # than the public host name).
    client_announcement: ClientAnnouncement | None = None


@dataclass(frozen=True)
class NodeTarget:
    """A node as it should be: its spec plus the live settings to hold."""

    spec: NodeSpec
    live_config: tuple[tuple[str, str], ...]
    default_user_on: bool
    default_user_hashes: frozenset[str]
    # amr's own users the node must have, as this version grants them.
    internal_users: tuple[InternalUser, ...] = ()


@dataclass(frozen=True)
class ObservedUser:
    """One of amr's users on a node: enabled, its password hashes, its command rules."""

    on: bool
    hashes: frozenset[str]
    commands: str


@dataclass(frozen=True)
class ObservedNode:
    """What one node looked like when observed. ``None`` fields were not observable."""

    name: str
    process: ProcessState
    ready: bool = False
    config: dict[str, str] = field(default_factory=dict)
    default_user_on: bool | None = None
    default_user_hashes: frozenset[str] | None = None
    default_user_commands: str | None = None  # its command rules, as ACL GETUSER shows them
    cluster_id: str | None = None
    cluster_known_ids: frozenset[str] = frozenset()
    cluster_slots_assigned: int = 0
    cluster_slot_ranges: tuple[tuple[int, int], ...] = ()  # the slots it owns itself, as ranges
    cluster_state_ok: bool = False
    # Slots assigned to any node in this node's view (CLUSTER INFO); None: not known. With
    # cluster-require-full-coverage off, the state is ok before gossip has told every slot's owner.
    cluster_slots_seen: int | None = None
    cluster_primary_id: str | None = None  # for a replica: the id of the primary it follows
    cluster_nodes: tuple[ClusterNodeLine, ...] = ()  # its CLUSTER NODES lines for the other nodes
    role: str | None = None  # what ROLE says: "master" or "slave"
    # amr's users as ACL GETUSER shows them, by name; a missing user is absent. None: not observed.
    internal_users: Mapping[str, ObservedUser] | None = None
    config_file: str | None = None  # the valkey.conf on disk
    snapshot_on_disk: bool = False  # an RDB file the node would load at its next start
