"""Deciding how a node of an HA database starts: at once as configured, as a replica of the peer that
is primary now, or not yet.

A primary killed by surprise is restarted by the supervisor within a second, before the `amr ha`
coordinator has even noticed it was gone. Without persistence it comes back empty, still a
primary, and its replica reconnects and copies the empty dataset: every key is lost although a replica
held them all. So a node starts only after asking its peers: if one is the primary now, the node joins
it as a replica; if its replica is still waiting for it (link recently lost), the node holds back until
the replica has been promoted, or until ``rejoin_wait_ms`` has passed (no failover came: start as
configured, which is all that can be done).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from amr.logic.ha.replication import ReplicationView


@dataclass(frozen=True)
class LaunchDecision:
    """Start now (``wait`` False), optionally as a replica of the peer on port ``replica_of``."""

    wait: bool
    replica_of: int | None
    reason: str


def lost(view: ReplicationView | None, primary_port: int) -> bool:
    """The replica ``view`` followed the node on ``primary_port`` until it went away: it was in sync
    (its link is up, or was up since it started). A link still "up" counts: the node asking is not
    running, so the replica just has not noticed yet."""
    return view is not None and view.role == "slave" and view.master_port == primary_port and view.synced


# How long a restarting node keeps asking a peer that is not running (refused: starting itself)
# before it counts it as down: a lost answer must not make a primary start empty.
UNANSWERED_WAIT_MS = 1500
# A peer that is running but did not answer in time (busy, on a loaded host). It may be the replica
# holding every key this node lost, so the node waits for it as long as for a failover: starting
# empty meanwhile would have the replica copy the empty dataset.
BUSY: Literal["busy"] = "busy"
PeerView = ReplicationView | None | Literal["busy"]


def choose_launch(
    own_port: int,
    peers: Mapping[int, PeerView],
    cluster_mode: bool,
    waited_ms: float,
    rejoin_wait_ms: int,
) -> LaunchDecision:
    """Decide whether a node starts now, and as whose replica, from what each peer (by port) says.

    - A peer is primary: start now. A non-clustered node starts as its replica (``replicaof``); a
      cluster node just starts, and the cluster makes it a replica (the peer holds its slots with a
      newer epoch).
    - A peer replicated from this node until it went away (this node died): wait for the failover,
      at most ``rejoin_wait_ms``.
    - A peer is running but does not answer in time (``BUSY``): ask again, for ``rejoin_wait_ms``
      at most.
    - A peer is not running: ask again, for ``UNANSWERED_WAIT_MS`` at most (a restart after every
      process on the host stopped waits that long, since no peer comes up before it).
    - Otherwise (no peers, none answering for that long, or replicas that never synced): start as
      configured.
    """
    views = {port: view for port, view in peers.items() if isinstance(view, ReplicationView)}
    primaries = [port for port, view in sorted(views.items()) if view.role == "master"]
    if primaries:
        port = primaries[0]
        if cluster_mode:
            return LaunchDecision(
                False, None, f"the node on port {port} is primary; the cluster makes this node its replica"
            )
        return LaunchDecision(False, port, f"the node on port {port} is primary; starting as its replica")
    waiting = [port for port, view in sorted(views.items()) if lost(view, own_port)]
    if waiting and waited_ms < rejoin_wait_ms:
        return LaunchDecision(
            True, None, f"the replica on port {waiting[0]} lost this node; waiting for its promotion"
        )
    if waiting:
        return LaunchDecision(False, None, f"no failover within {rejoin_wait_ms} ms; starting as configured")
    busy = [port for port, view in sorted(peers.items()) if view == BUSY]
    if busy and waited_ms < rejoin_wait_ms:
        return LaunchDecision(
            True, None, f"the node on port {busy[0]} is running but does not answer yet; asking again"
        )
    silent = [port for port, view in sorted(peers.items()) if view is None]
    if silent and waited_ms < UNANSWERED_WAIT_MS:
        return LaunchDecision(True, None, f"the node on port {silent[0]} does not answer; asking again")
    return LaunchDecision(False, None, "no peer is waiting for this node; starting as configured")


def describe_peers(peers: Mapping[int, PeerView]) -> str:
    """What the peers said, for the node's log: ``8502: replica of 8501, link down, was in sync``."""
    parts = []
    for port, view in sorted(peers.items()):
        if view is None:
            parts.append(f"{port}: no answer")
        elif view == BUSY:
            parts.append(f"{port}: running, no answer in time")
        elif view.role == "master":
            parts.append(f"{port}: primary")
        else:
            synced = "was in sync" if view.synced else "never in sync"
            parts.append(f"{port}: replica of {view.master_port}, link {view.link or 'unknown'}, {synced}")
    return "; ".join(parts) or "no peers"
