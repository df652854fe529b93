"""Deciding how a node of an HA database starts: at once as configured, as a replica of the peer that
is primary now, or not yet.

A primary killed by surprise is restarted by the supervisor within a second, before Sentinel or the
`amr ha` coordinator has even noticed it was gone. Without persistence it comes back empty, still a
primary, and its replica reconnects and copies the empty dataset: every key is lost although a replica
held them all. So a node starts only after asking its peers: if one is the primary now, the node joins
it as a replica; if its replica is still waiting for it (link recently lost), the node holds back until
the replica has been promoted, or until ``rejoin_wait_ms`` has passed (no failover came: start as
configured, which is all that can be done).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerView:
    """What a peer node of the same shard says of itself (INFO replication).

    ``master_port`` is the port of the primary a replica follows; ``link_up`` says its link to that
    primary is up; ``link_down_since_s`` is how long a link that was up has been down (None if the
    replica never synced since it started: it cannot be waiting for a primary it never had)."""

    port: int
    role: str  # "master" or "slave"
    master_port: int | None = None
    link_up: bool = False
    link_down_since_s: int | None = None

    def lost(self, primary_port: int) -> bool:
        """This replica followed the node on ``primary_port`` until it went away. A link still "up"
        counts: the node asking is not running, so the replica just has not noticed yet."""
        return (
            self.role == "slave"
            and self.master_port == primary_port
            and (self.link_up or self.link_down_since_s is not None)
        )


@dataclass(frozen=True)
class LaunchDecision:
    """Start now (``wait`` False), optionally as a replica of the peer on port ``replica_of``."""

    wait: bool
    replica_of: int | None
    reason: str


def parse_replication_info(port: int, text: str) -> PeerView | None:
    """Read a peer's ``INFO replication`` reply; None if it does not say the node's role."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    role = fields.get("role")
    if role not in ("master", "slave"):
        return None
    if role == "master":
        return PeerView(port, "master")
    try:
        master_port: int | None = int(fields.get("master_port", ""))
    except ValueError:
        master_port = None
    up = fields.get("master_link_status") == "up"
    down: int | None = None
    if not up:
        try:
            seconds = int(fields.get("master_link_down_since_seconds", "-1"))
        except ValueError:
            seconds = -1
        down = seconds if seconds >= 0 else None
    return PeerView(port, "slave", master_port, up, down)


def choose_launch(
    own_port: int,
    peers: Sequence[PeerView | None],
    cluster_mode: bool,
    waited_ms: float,
    rejoin_wait_ms: int,
) -> LaunchDecision:
    """Decide whether a node starts now, and as whose replica.

    - A peer is primary: start now. A non-clustered node starts as its replica (``replicaof``); a
      cluster node just starts, and the cluster makes it a replica (the peer holds its slots with a
      newer epoch).
    - A peer replicated from this node until it went away (this node died): wait for the failover,
      at most ``rejoin_wait_ms``.
    - Otherwise (no peers, none answering, or replicas that never synced, as after every process on
      the host was restarted): start as configured.
    """
    primaries = [p for p in peers if p is not None and p.role == "master"]
    if primaries:
        peer = primaries[0]
        if cluster_mode:
            return LaunchDecision(
                False,
                None,
                f"the node on port {peer.port} is primary; the cluster makes this node its replica",
            )
        return LaunchDecision(
            False, peer.port, f"the node on port {peer.port} is primary; starting as its replica"
        )
    waiting = [p for p in peers if p is not None and p.lost(own_port)]
    if waiting and waited_ms < rejoin_wait_ms:
        return LaunchDecision(
            True, None, f"the replica on port {waiting[0].port} lost this node; waiting for its promotion"
        )
    if waiting:
        return LaunchDecision(False, None, f"no failover within {rejoin_wait_ms} ms; starting as configured")
    return LaunchDecision(False, None, "no peer is waiting for this node; starting as configured")
