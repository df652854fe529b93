"""A database's history: what happened to its nodes, when and why (restarts, recoveries, repairs,
and later failovers and switchovers from the HA work).

Events are our model, recorded by the reconciler and listed by the API (``.../databases/{db}/events``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

EVENT_TYPE = "Microsoft.Cache/redisEnterprise/databases/events"


class EventKind(enum.StrEnum):
    RESTART = "restart"  # a node's process exited and the supervisor restarted it
    RECOVERY = "recovery"  # amr started a node that was not running (after stop/serve, a reboot)
    FAILOVER = "failover"  # unplanned promotion of a replica (HA work)
    SWITCHOVER = "switchover"  # planned, coordinated promotion (HA work)
    REPAIR = "repair"  # a live setting or the topology had drifted and was put back


def events_prefix(database_key: str) -> str:
    """The store key prefix under which a database's events sort in time order."""
    return f"{database_key}/events/"


@dataclass(frozen=True)
class DatabaseEvent:
    """One thing that happened to a database.

    ``id`` is unique within the database and starts with the time, so a database's events listed by
    key come in time order.
    """

    id: str
    database_key: str
    database_id: str
    time: str  # ISO 8601, UTC
    kind: EventKind
    cause: str
    node: str | None = None
    shard: int | None = None
    old_primary: str | None = None
    new_primary: str | None = None
    old_pid: int | None = None
    new_pid: int | None = None

    @property
    def key(self) -> str:
        return events_prefix(self.database_key) + self.id


@dataclass(frozen=True)
class NodePids:
    """The process ids (and primaries) the reconciler last saw for a database's nodes, kept in the
    store so that a restarted control plane can tell nodes that kept running from nodes started while
    it was away, and a primary that changed meanwhile."""

    database_key: str
    pids: dict[str, int] = field(default_factory=dict)
    # The primary last seen clearly, per shard (the shard number as text), so that a failover that
    # happened while no control plane was watching is still told.
    primaries: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.database_key
