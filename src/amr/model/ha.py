"""Automatic failover of HA databases: what the `amr ha` coordinator watches and what it sees.

The control plane writes the watch (``AMR_HOME/ha/watch.json``): every database with high
availability, its shards and their nodes. The coordinator probes each node a few times a second and
keeps one ``NodeProbe`` per node: whether it answered, since when it has not, and its replication view.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatchedNode:
    """A node the coordinator probes: its name, its unix socket and its internal TCP port (what a
    replica names as its primary's port)."""

    name: str
    socket: str
    port: int


@dataclass(frozen=True)
class WatchedShard:
    """The nodes of one shard: a primary and its replicas, in whatever roles they have now."""

    shard: int
    nodes: tuple[WatchedNode, ...]


@dataclass(frozen=True)
class WatchedDatabase:
    """A database with highAvailability Enabled."""

    id: str  # the ARM resource id, for logs
    uid: str  # host-unique, names its nodes
    shards: tuple[WatchedShard, ...]
    # Cluster mode (OSSCluster, EnterpriseCluster): a replica is promoted with CLUSTER FAILOVER
    # TAKEOVER. NoCluster: with REPLICAOF NO ONE, and a stale primary is made a replica of its successor.
    cluster: bool = True


@dataclass(frozen=True)
class HaWatch:
    """Everything the coordinator keeps highly available."""

    databases: tuple[WatchedDatabase, ...] = ()


@dataclass(frozen=True)
class NodeProbe:
    """What the coordinator knows of one node after its latest probe (times are monotonic seconds).

    ``answered``: the latest PING got a reply (any reply: a node loading its dataset answers LOADING
    and is alive). ``last_ok``: when it last answered, None if never since the coordinator watches it
    (``watched_since``). The replication fields come from the latest ``INFO replication`` the node
    answered: ``role`` is ``master`` or ``slave`` (None: unknown); for a slave, ``master_port`` is its
    primary's port, ``link`` its link state (``up`` or ``down``) and ``synced`` whether it has been in
    sync with its primary at some time since it started (a replica that never was holds no data to
    promote). ``gone_since``: see the field."""

    name: str
    answered: bool
    last_ok: float | None
    watched_since: float
    role: str | None = None
    master_port: int | None = None
    link: str = ""
    synced: bool = False
    offset: int = 0
    # Since when every probe found nothing listening on the node's socket (refused or no socket):
    # the process is not running, which is certain, unlike a probe that timed out. None otherwise.
    gone_since: float | None = None
    # A primary's replication ids (``master_replid``, ``master_replid2``): a promoted replica keeps
    # its old primary's id as ``replid2``, which tells a successor from the primary it replaced.
    replid: str = ""
    replid2: str = ""
