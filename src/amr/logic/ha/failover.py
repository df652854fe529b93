"""Automatic failover of HA databases: when the `amr ha` coordinator promotes a replica.

A Valkey Cluster promotes a replica by itself only when a majority of primaries agree that its primary
failed; with one shard (amr's default) or two, the only voter is the primary that died, so a shard
would stay down. A NoCluster database has nothing of the kind. The coordinator probes every node of a
watched database a few times a second into ``NodeProbe`` snapshots; these pure functions read them and
decide which replica to promote (``CLUSTER FAILOVER TAKEOVER`` in cluster mode, ``REPLICAOF NO ONE``
otherwise) and which stale NoCluster primary to turn into a replica, and say what happened in one
outcome line.

NoCluster failover used to be Sentinel's. Sentinel learns about primaries from hello messages on a
pub/sub channel of the monitored node itself, which a tenant with the database's key could publish
to: a forged hello moved Sentinel's monitor to the tenant's address, where Sentinel sent amr's admin
credentials. The coordinator reads only the nodes' own replies over their unix sockets, so nothing a
tenant writes to its database can steer a failover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from amr.logic.outcomes import Outcome, Severity
from amr.model.ha import HaWatch, NodeProbe, WatchedDatabase, WatchedNode, WatchedShard


@dataclass(frozen=True)
class Takeover:
    """Promote ``replica`` (``CLUSTER FAILOVER TAKEOVER``): ``failed_primary`` of its shard has not
    answered for ``down_for`` seconds."""

    database_id: str
    database_uid: str
    shard: int
    replica: WatchedNode
    failed_primary: str
    down_for: float
    cluster: bool = True  # promote with CLUSTER FAILOVER TAKEOVER; else REPLICAOF NO ONE

    @property
    def command(self) -> tuple[str, ...]:
        """What the replica is sent."""
        return ("CLUSTER", "FAILOVER", "TAKEOVER") if self.cluster else ("REPLICAOF", "NO", "ONE")

    @property
    def key(self) -> tuple[str, int]:
        """The shard it acts on, as ``recent_attempts`` keys it."""
        return (self.database_uid, self.shard)


def down_for(probe: NodeProbe, now: float) -> float:
    """Seconds a node has not answered (0 while it answers); a node that never answered counts from
    when the coordinator started to watch it."""
    if probe.answered:
        return 0.0
    since = probe.last_ok if probe.last_ok is not None else probe.watched_since
    return max(0.0, now - since)


def is_down(probe: NodeProbe, now: float, down_after_ms: int, gone_after_ms: int) -> bool:
    """Whether a node counts as failed: it has not answered for ``down_after_ms``, or nothing has
    listened on its socket for ``gone_after_ms`` (its process is not running, which is certain, so it
    needs less patience than a node that may only be slow)."""
    if probe.answered:
        return False
    if down_for(probe, now) * 1000 >= down_after_ms:
        return True
    return probe.gone_since is not None and (now - probe.gone_since) * 1000 >= gone_after_ms


def waits_for_lagging_replica(
    failed: NodeProbe, best: NodeProbe, now: float, gone_after_ms: int, lagging_after_ms: int | None
) -> bool:
    """Whether a silent primary gets longer than ``down_after_ms`` before ``best`` replaces it.

    Replication is asynchronous: a primary acknowledges a write before its replica has it. When the
    replica's offset is behind the primary's at its last answer, promoting it now throws away writes
    clients were told succeeded; and a primary that stalls (a big reply to copy, a loaded host) for a
    second is far likelier than one that hung for good. So it gets up to ``lagging_after_ms`` to
    answer again (then it keeps its writes and the replica catches up). A primary whose process is
    gone cannot come back with them: it is replaced at once. None: no such wait."""
    if lagging_after_ms is None or best.offset >= failed.offset:
        return False
    if failed.gone_since is not None and (now - failed.gone_since) * 1000 >= gone_after_ms:
        return False
    return down_for(failed, now) * 1000 < lagging_after_ms


def _followers(shard: WatchedShard, failed: WatchedNode, probes: Mapping[str, NodeProbe]) -> list[NodeProbe]:
    """Nodes of the shard that answer and replicate from ``failed``."""
    out = []
    for node in shard.nodes:
        probe = probes.get(node.name)
        if node is failed or probe is None or not probe.answered:
            continue
        if probe.role == "slave" and probe.master_port == failed.port:
            out.append(probe)
    return out


def plan_failovers(
    watch: HaWatch | None,
    probes: Mapping[str, NodeProbe],
    now: float,
    down_after_ms: int,
    recent_attempts: Mapping[tuple[str, int], tuple[float, str]],
    failover_timeout_ms: int,
    gone_after_ms: int | None = None,
    lagging_after_ms: int | None = None,
) -> list[Takeover]:
    """Decide which replicas to promote now, at most one per shard.

    A shard fails over when one of its nodes is down (``is_down``: no answer for ``down_after_ms``,
    or no process for ``gone_after_ms``, by default the same) and a replica of
    that node (one that answers, says it replicates from that node's port, and has been in sync with
    it since it started) can take its place; among several, the one with the largest replication
    offset; if even that one lags the silent primary's last offset, only after ``lagging_after_ms``
    (``waits_for_lagging_replica``). A node that answers anything, even LOADING, is alive. A shard with a takeover sent within
    the last ``failover_timeout_ms`` (``recent_attempts``: shard -> (when, promoted node), see
    ``plan_attempts_to_keep``) waits, so a takeover that is still settling is never doubled. No watch
    (file missing or unreadable): nothing."""
    if watch is None:
        return []
    gone_after = down_after_ms if gone_after_ms is None else gone_after_ms
    takeovers = []
    for db in watch.databases:
        for shard in db.shards:
            attempted = recent_attempts.get((db.uid, shard.shard))
            if attempted is not None and (now - attempted[0]) * 1000 < failover_timeout_ms:
                continue
            for failed in shard.nodes:
                probe = probes.get(failed.name)
                if probe is None or not is_down(probe, now, down_after_ms, gone_after):
                    continue
                ready = [p for p in _followers(shard, failed, probes) if p.synced]
                if not ready:
                    continue
                # max() keeps the first of equals: ties go to the first name.
                best = max(sorted(ready, key=lambda p: p.name), key=lambda p: p.offset)
                if waits_for_lagging_replica(probe, best, now, gone_after, lagging_after_ms):
                    continue
                replica = next(n for n in shard.nodes if n.name == best.name)
                takeovers.append(
                    Takeover(
                        db.id, db.uid, shard.shard, replica, failed.name, down_for(probe, now), db.cluster
                    )
                )
                break
    return takeovers


@dataclass(frozen=True)
class Demotion:
    """Make ``stale`` a replica of ``successor`` (``REPLICAOF <host> <successor.port>``): both answer
    as primaries of one NoCluster shard, and ``successor`` was promoted in ``stale``'s place."""

    database_id: str
    shard: int
    stale: WatchedNode
    successor: WatchedNode


def plan_demotions(watch: HaWatch | None, probes: Mapping[str, NodeProbe]) -> list[Demotion]:
    """Decide which NoCluster primaries to turn into replicas: a primary that was replaced.

    A primary that hung (not killed) long enough to be failed over answers again as a primary; a
    Valkey Cluster demotes such a node by itself (its epoch is older), a standalone node does not.
    Which of two primaries replaced the other is read from the nodes, not remembered, so it holds
    across restarts of the coordinator: a promoted replica keeps the replication id of the primary
    it followed as its ``master_replid2``, so a primary whose ``replid2`` is another answering
    primary's ``replid`` is that one's successor. Two primaries with no such link (nothing says
    which holds the newer data) are left alone."""
    if watch is None:
        return []
    demotions = []
    for db in watch.databases:
        if db.cluster:
            continue
        for shard in db.shards:
            primaries = [
                (node, p)
                for node in shard.nodes
                if (p := probes.get(node.name)) is not None and p.answered and p.role == "master" and p.replid
            ]
            for stale, old in primaries:
                successors = [n for n, p in primaries if n is not stale and p.replid2 == old.replid]
                if successors:
                    demotions.append(Demotion(db.id, shard.shard, stale, successors[0]))
    return demotions


def describe_demotion(demotion: Demotion, error: str = "") -> Outcome:
    """The outcome of one demotion: done (a warning: a replaced primary came back), or failed with
    ``error`` (an error: two primaries stay)."""
    what = (
        f"node {demotion.stale.name} of database {demotion.database_id} shard {demotion.shard}, a primary "
        f"replaced by {demotion.successor.name}, a replica of it"
    )
    if error:
        return Outcome(Severity.ERROR, f"could not make {what}: {error}")
    return Outcome(Severity.WARNING, f"made {what}")


def plan_attempts_to_keep(
    attempts: Mapping[tuple[str, int], tuple[float, str]],
    probes: Mapping[str, NodeProbe],
    now: float,
    failover_timeout_ms: int,
) -> dict[tuple[str, int], tuple[float, str]]:
    """The takeovers (shard -> (when, promoted node)) that still hold their shard back: sent within
    ``failover_timeout_ms`` and not yet settled. One settles as soon as the promoted node answers as
    a primary; from then on a failure of that shard is a new one and is failed over at once."""
    kept = {}
    for key, (when, promoted) in attempts.items():
        probe = probes.get(promoted)
        settled = probe is not None and probe.answered and probe.role == "master"
        if (now - when) * 1000 < failover_timeout_ms and not settled:
            kept[key] = (when, promoted)
    return kept


def describe_takeover(takeover: Takeover, error: str = "") -> Outcome:
    """The outcome of one takeover: done (a warning: a primary failed), or failed with ``error`` (an
    error: the shard has no primary until a retry takes)."""
    where = f"node {takeover.replica.name} of database {takeover.database_id} shard {takeover.shard}"
    why = f"primary {takeover.failed_primary} did not answer for {takeover.down_for:.1f} s"
    if error:
        return Outcome(Severity.ERROR, f"could not promote {where} after {why}: {error}")
    return Outcome(Severity.WARNING, f"promoted {where} after {why}")


def describe_ha_state(
    watch: HaWatch | None,
    probes: Mapping[str, NodeProbe],
    now: float,
    down_after_ms: int,
    lagging_after_ms: int | None = None,
) -> str:
    """One line saying what the coordinator sees, without durations, so it changes (and is logged)
    only when the picture does: every node answers, or which nodes do not and what that means."""
    if watch is None:
        return "no HA watch file: nothing to watch"
    nodes = sum(len(s.nodes) for db in watch.databases for s in db.shards)
    if not nodes:
        return "no clustered database with high availability to watch"
    problems = [
        line
        for db in watch.databases
        for shard in db.shards
        for line in _shard_problems(db, shard, probes, now, down_after_ms, lagging_after_ms)
    ]
    if not problems:
        return f"watching {len(watch.databases)} database(s), {nodes} node(s): every node answers"
    return "; ".join(problems)


def _shard_problems(
    db: WatchedDatabase,
    shard: WatchedShard,
    probes: Mapping[str, NodeProbe],
    now: float,
    down_after_ms: int,
    lagging_after_ms: int | None,
) -> Sequence[str]:
    out = []
    for node in shard.nodes:
        probe = probes.get(node.name)
        if probe is None or probe.answered:
            continue
        where = f"database {db.id} shard {shard.shard}"
        followers = _followers(shard, node, probes)
        if not followers:
            out.append(f"node {node.name} of {where} does not answer")
        elif down_for(probe, now) * 1000 < down_after_ms:
            out.append(f"primary {node.name} of {where} does not answer; failover after {down_after_ms} ms")
        elif not any(p.synced for p in followers):
            names = ", ".join(p.name for p in followers)
            out.append(
                f"primary {node.name} of {where} does not answer and its replica ({names}) never synced "
                "since it started: nothing to promote"
            )
        elif waits_for_lagging_replica(
            probe, max((p for p in followers if p.synced), key=lambda p: p.offset), now, 0, lagging_after_ms
        ):
            out.append(
                f"primary {node.name} of {where} does not answer and its replica has not received all "
                f"it acknowledged: failover after {lagging_after_ms} ms unless it answers again"
            )
        else:
            out.append(f"primary {node.name} of {where} does not answer; failing over")
    return out
