"""Planning a restart of a database's nodes (an amr extension, also behind Azure's upgradeDBRedisVersion),
one step at a time, from what the nodes say now.

A rolling restart keeps a database with high availability serving and loses no acknowledged write. Per
shard: the replica is restarted and waits until it is in sync again; the primary hands over to it (a
coordinated switchover: writes pause until the replica has every one, then the roles switch); then the
old primary, a replica now, is restarted and waits until it is in sync. The roles stay switched. Without
high availability the one node of a shard is simply restarted: the database does not serve meanwhile
and its data comes back only from persistence. A plain restart (not rolling) restarts every node at once.

Progress is read from the nodes, never remembered: a node whose process id differs from the one it had
when the operation began has been restarted. A control plane that crashed halfway replans from what it
sees and carries on where it stopped; every step is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from amr.logic.operations.events import event_id
from amr.model.events import DatabaseEvent, EventKind
from amr.model.resources import Operation

ACTION_RESTART = "restart"
ACTION_ROLLING_RESTART = "rollingRestart"
ACTION_UPGRADE = "upgrade"
RESTART_ACTIONS = (ACTION_RESTART, ACTION_ROLLING_RESTART, ACTION_UPGRADE)

_ACTION_WORDS = {
    ACTION_RESTART: "restart",
    ACTION_ROLLING_RESTART: "rolling restart",
    ACTION_UPGRADE: "upgrade (upgradeDBRedisVersion)",
    "create": "create",
    "update": "update",
    "delete": "delete",
    "flush": "flush",
}


def describe_action(action: str) -> str:
    """An operation's action in words, for messages."""
    return _ACTION_WORDS.get(action, action)


@dataclass(frozen=True)
class RollingNode:
    """One node as a restart step sees it.

    ``offset``: for a primary its ``master_repl_offset``; for a replica the offset it has processed,
    read after every primary's (so a replica whose offset is at least its primary's has every write the
    primary had when it was observed). ``link_up``: a replica's link to its primary is up and no sync
    is running. ``handing_over``: a primary is in the middle of a FAILOVER."""

    name: str
    shard: int
    pid: int | None  # None: the process is not running
    ready: bool = False  # answers the admin user
    role: str | None = None  # what ROLE says: "master" or "slave"
    link_up: bool = False
    offset: int = 0
    handing_over: bool = False
    cluster_ok: bool = True  # cluster mode: the node says cluster_state:ok


@dataclass(frozen=True)
class RestartSnapshot:
    """Everything a restart step is decided on. ``initial_pids``: the nodes' process ids when the
    operation began."""

    nodes: tuple[RollingNode, ...]
    initial_pids: Mapping[str, int]
    rolling: bool
    cluster_mode: bool
    persistence: bool = False
    upgrade: bool = False


@dataclass(frozen=True)
class RestartNodes:
    """Restart these nodes (all at once) and wait until they answer; ``cause`` goes in their history."""

    names: tuple[str, ...]
    cause: str


@dataclass(frozen=True)
class Switchover:
    """Hand shard ``shard`` over from its primary to a replica that is in sync (writes pause meanwhile)."""

    shard: int
    old_primary: str
    new_primary: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do but wait (a node starting, a replica catching up, a switchover settling)."""

    reason: str


@dataclass(frozen=True)
class Done:
    """Every node has been restarted and the database serves; ``summary`` says what was done."""

    summary: str


RestartStep = RestartNodes | Switchover | Wait | Done


def restarted(node: RollingNode, initial_pids: Mapping[str, int]) -> bool:
    """Whether the node runs a process started since the operation began."""
    before = initial_pids.get(node.name)
    return node.pid is not None and (before is None or node.pid != before)


def _in_sync(replica: RollingNode, primary: RollingNode, cluster_mode: bool) -> bool:
    return (
        replica.ready
        and replica.role == "slave"
        and replica.link_up
        and replica.offset >= primary.offset
        and (replica.cluster_ok or not cluster_mode)
    )


def plan_restart_step(snapshot: RestartSnapshot) -> RestartStep:
    """Decide the next step of a restart from one observation of the database's nodes.

    Rolling, shard by shard in order: wait until every node of the shard answers and the shard has one
    primary; restart a replica not restarted yet; wait until every replica is in sync (its link up and
    its offset caught up with the primary's); hand the primary over to a replica if the primary was not
    restarted yet (it then is a replica, so the next step restarts it); otherwise the shard is done. A
    shard without a replica just restarts its node. Not rolling: every node not restarted yet is
    restarted at once, then the step waits until every node answers and every replica follows.
    """
    nodes = sorted(snapshot.nodes, key=lambda n: (n.shard, n.name))
    if not snapshot.rolling:
        return _plan_all_at_once(snapshot, nodes)
    verb = "upgrade" if snapshot.upgrade else "rolling restart"
    for shard in sorted({n.shard for n in nodes}):
        members = [n for n in nodes if n.shard == shard]
        down = [n.name for n in members if not n.ready]
        if down:
            return Wait(f"node {', '.join(down)} of shard {shard} is not answering yet")
        primaries = [n for n in members if n.role == "master"]
        if len(primaries) != 1:
            return Wait(f"shard {shard} has {len(primaries)} primaries; waiting for one")
        primary = primaries[0]
        replicas = [n for n in members if n is not primary]
        if not replicas:
            if not restarted(primary, snapshot.initial_pids):
                return RestartNodes((primary.name,), _no_ha_cause(verb, snapshot.persistence))
            continue
        if primary.handing_over:
            return Wait(f"primary {primary.name} of shard {shard} is handing over")
        stale = [r for r in replicas if not restarted(r, snapshot.initial_pids)]
        if stale:
            return RestartNodes(
                (stale[0].name,),
                f"{verb}: amr restarted this replica of shard {shard}; its primary kept serving",
            )
        lagging = [r.name for r in replicas if not _in_sync(r, primary, snapshot.cluster_mode)]
        if lagging:
            return Wait(f"replica {', '.join(lagging)} of shard {shard} is catching up with its primary")
        if not restarted(primary, snapshot.initial_pids):
            return Switchover(shard, primary.name, replicas[0].name)
    return Done(_summary(snapshot, nodes))


def _plan_all_at_once(snapshot: RestartSnapshot, nodes: Sequence[RollingNode]) -> RestartStep:
    stale = [n.name for n in nodes if n.pid is not None and not restarted(n, snapshot.initial_pids)]
    if stale:
        data = (
            "its data came back from persistence"
            if snapshot.persistence
            else "the database has no persistence, so it came back empty"
        )
        return RestartNodes(
            tuple(stale), f"restart: amr restarted every node of the database at once; {data}"
        )
    down = [n.name for n in nodes if not n.ready]
    if down:
        return Wait(f"node {', '.join(down)} is not answering yet")
    for shard in sorted({n.shard for n in nodes}):
        members = [n for n in nodes if n.shard == shard]
        primaries = [n for n in members if n.role == "master"]
        if len(primaries) != 1:
            return Wait(f"shard {shard} has {len(primaries)} primaries; waiting for one")
        lagging = [r.name for r in members if r is not primaries[0] and not r.link_up]
        if lagging:
            return Wait(f"replica {', '.join(lagging)} of shard {shard} is syncing with its primary")
    return Done(_summary(snapshot, nodes))


def _no_ha_cause(verb: str, persistence: bool) -> str:
    data = (
        "its data came back from persistence"
        if persistence
        else "the database has no persistence, so it came back empty"
    )
    return (
        f"{verb}: amr restarted the node; the shard has no replica (highAvailability Disabled), so it did "
        f"not serve meanwhile and {data}"
    )


def _summary(snapshot: RestartSnapshot, nodes: Sequence[RollingNode]) -> str:
    count = len(nodes)
    shards = len({n.shard for n in nodes})
    ha = all(sum(1 for n in nodes if n.shard == s) > 1 for s in {n.shard for n in nodes})
    what = "Upgraded" if snapshot.upgrade else "Restarted"
    if not snapshot.rolling:
        data = "from persistence" if snapshot.persistence else "empty (no persistence)"
        return f"{what} all {count} nodes at once; the database came back {data}."
    if ha:
        return (
            f"{what} {count} nodes one at a time with a switchover per shard ({shards} shard(s)); the "
            "database kept serving and every replica is in sync."
        )
    data = (
        "its data came back from persistence"
        if snapshot.persistence
        else "it came back empty (no persistence)"
    )
    return (
        f"{what} {count} node(s). The database has no high availability, so it did not serve while its "
        f"node restarted, and {data}."
    )


def choose_conflicting_operation(
    operations: Sequence[Operation], resource_ids: Collection[str], actions: Collection[str] | None = None
) -> Operation | None:
    """The first operation still running on one of ``resource_ids`` (ARM ids, compared without regard
    to case), of one of ``actions`` if given: what a new operation would conflict with."""
    ids = {i.lower() for i in resource_ids}
    for op in operations:
        if op.status.done or op.resource_id.lower() not in ids:
            continue
        if actions is None or op.action in actions:
            return op
    return None


def parse_info_fields(reply: object) -> dict[str, str]:
    """An INFO reply as field -> text, whether the client parsed it into a dict or left it as text."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply or "")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def parse_rolling_node(
    name: str,
    shard: int,
    pid: int | None,
    role_reply: object,
    replication: Mapping[str, str],
    cluster_info: Mapping[str, str] | None = None,
) -> RollingNode:
    """A node's restart view from its ROLE reply, INFO replication fields and (in cluster mode) CLUSTER
    INFO fields."""
    role = None
    if isinstance(role_reply, list | tuple) and role_reply:
        first = role_reply[0]
        role = first.decode() if isinstance(first, bytes) else str(first)
    role = role or replication.get("role")
    if role == "master":
        offset = _int(replication.get("master_repl_offset"))
    else:
        offset = _int(replication.get("slave_repl_offset"))
    return RollingNode(
        name=name,
        shard=shard,
        pid=pid,
        ready=True,
        role=role,
        link_up=replication.get("master_link_status") == "up"
        and replication.get("master_sync_in_progress", "0") == "0",
        offset=offset,
        handing_over=replication.get("master_failover_state", "no-failover") != "no-failover",
        cluster_ok=cluster_info is None or cluster_info.get("cluster_state") == "ok",
    )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def plan_restart_event(
    database_key: str,
    database_id: str,
    now: datetime,
    node: str,
    shard: int,
    cause: str,
    old_pid: int | None,
    new_pid: int | None,
) -> DatabaseEvent:
    """The history entry of a node a restart restarted."""
    return DatabaseEvent(
        id=event_id(now, EventKind.RESTART, node),
        database_key=database_key,
        database_id=database_id,
        time=now.astimezone(UTC).isoformat(),
        kind=EventKind.RESTART,
        cause=cause,
        node=node,
        shard=shard,
        old_pid=old_pid,
        new_pid=new_pid,
    )


def describe_switchover(step: Switchover, upgrade: bool, took_ms: int) -> str:
    """The cause a restart's switchover of one shard gets in the database's history."""
    verb = "upgrade" if upgrade else "rolling restart"
    return (
        f"{verb}: planned switchover of shard {step.shard} from {step.old_primary} to its restarted "
        f"replica {step.new_primary}, which had every write before it took over ({took_ms} ms)"
    )
