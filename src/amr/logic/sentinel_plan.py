"""Planning what the host's Sentinel monitors: desired monitors + what ``SENTINEL MASTERS`` says -> the
SENTINEL commands that close the gap.

Every non-clustered database of a cache with highAvailability Enabled is monitored as ``amr-<uid>`` at
the address of its current primary (the one node that says it is master). Sentinel follows failovers it
makes itself; amr only moves a monitor when the primary changed behind Sentinel's back (a planned
switchover with FAILOVER), and never while Sentinel is handling the database (down or failing over).
Monitors of databases that are gone, or no longer HA NoCluster, are removed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, NodeAssignment

MONITOR_PREFIX = "amr-"
"""Sentinel monitors amr owns; others (an operator's) are never touched."""

# Flags of a master that Sentinel is handling: it thinks it is down, or it is failing it over.
SENTINEL_BUSY_FLAGS = frozenset({"s_down", "o_down", "failover_in_progress"})

# Monitor settings SENTINEL MASTERS reports, so drift can be seen and corrected.
_OBSERVABLE = ("down-after-milliseconds", "failover-timeout", "parallel-syncs")


def monitor_name(database_uid: str) -> str:
    """The Sentinel master name of a database: ``amr-<uid>``."""
    return MONITOR_PREFIX + database_uid


@dataclass(frozen=True)
class Monitor:
    """A monitor as it should be: the primary's address, the quorum, the settings SENTINEL MASTERS
    shows (``options``: name/value pairs) and the credentials Sentinel logs in to the nodes with."""

    host: str
    port: int
    quorum: int
    options: tuple[tuple[str, str], ...]
    auth_user: str
    auth_pass: str = field(repr=False)


@dataclass(frozen=True)
class ObservedMonitor:
    """One master as ``SENTINEL MASTERS`` reports it."""

    name: str
    host: str
    port: int
    quorum: int
    flags: frozenset[str]
    options: Mapping[str, str]

    @property
    def busy(self) -> bool:
        """Sentinel thinks the primary is down or is failing it over: its business, not amr's."""
        return bool(self.flags & SENTINEL_BUSY_FLAGS)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def parse_sentinel_masters(reply: object) -> dict[str, ObservedMonitor]:
    """Read a ``SENTINEL MASTERS`` reply (RESP2 flat lists or RESP3 maps) into monitors by name;
    entries without a name, address or port are left out."""
    out: dict[str, ObservedMonitor] = {}
    if not isinstance(reply, list):
        return out
    for item in reply:
        if isinstance(item, dict):
            fields = {_text(k): _text(v) for k, v in item.items()}
        elif isinstance(item, list):
            fields = {_text(item[i]): _text(item[i + 1]) for i in range(0, len(item) - 1, 2)}
        else:
            continue
        try:
            port = int(fields["port"])
            quorum = int(fields.get("quorum", "0"))
            name, host = fields["name"], fields["ip"]
        except (KeyError, ValueError):
            continue
        flags = frozenset(f for f in fields.get("flags", "").split(",") if f)
        options = {k: fields[k] for k in _OBSERVABLE if k in fields}
        out[name] = ObservedMonitor(name, host, port, quorum, flags, options)
    return out


class Watch(enum.Enum):
    """Whether Sentinel should monitor a database."""

    MONITOR = "monitor"  # at its current primary, once that is clear
    KEEP = "keep"  # leave whatever Sentinel has alone (a create in progress)
    REMOVE = "remove"  # it must not be monitored


def choose_sentinel_watch(db: Database, cluster: Cluster | None) -> Watch:
    """Decide whether Sentinel monitors ``db``: a non-clustered database of a cache with
    highAvailability Enabled, from the end of its create until its delete starts. A database being
    deleted is removed first, so stopping its nodes never looks like a failure."""
    if cluster is None or db.provisioning_state is ProvisioningState.DELETING:
        return Watch.REMOVE
    if cluster.high_availability is not Toggle.ENABLED:
        return Watch.REMOVE
    if db.clustering_policy is not ClusteringPolicy.NO_CLUSTER or not db.nodes:
        return Watch.REMOVE
    if db.resource_state is ResourceState.CREATE_FAILED:
        return Watch.REMOVE
    if db.provisioning_state is ProvisioningState.CREATING:
        return Watch.KEEP
    return Watch.MONITOR


def choose_monitored_primary(db: Database, roles: Mapping[str, str | None]) -> NodeAssignment | None:
    """The node Sentinel should monitor as the database's primary: the one node whose ROLE says master
    (``roles``: node name -> ROLE's first item, None if it did not answer). None when that is unclear
    (no master, as during a failover, or two, as when an old primary came back): then the monitor is
    left as it is."""
    masters = [n for n in db.nodes if roles.get(n.name) == "master"]
    return masters[0] if len(masters) == 1 else None


def plan_desired_monitors(
    databases: Iterable[Database],
    clusters: Mapping[str, Cluster],
    roles: Mapping[str, str | None],
    host: str,
    quorum: int,
    down_after_ms: int,
    failover_timeout_ms: int,
    auth_user: str,
    auth_pass: str,
) -> dict[str, Monitor | None]:
    """Decide the monitor each database should have, by Sentinel master name. A database that should be
    monitored but whose primary is unclear (or that is still being created) maps to None: leave its
    monitor alone. Databases absent from the result must not be monitored."""
    options = (
        ("down-after-milliseconds", str(down_after_ms)),
        ("failover-timeout", str(failover_timeout_ms)),
        ("parallel-syncs", "1"),
    )
    desired: dict[str, Monitor | None] = {}
    for db in databases:
        watch = choose_sentinel_watch(db, clusters.get(db.cluster_key))
        if watch is Watch.REMOVE:
            continue
        primary = choose_monitored_primary(db, roles) if watch is Watch.MONITOR else None
        desired[monitor_name(db.uid)] = (
            Monitor(host, primary.port, quorum, options, auth_user, auth_pass) if primary else None
        )
    return desired


@dataclass(frozen=True)
class AddMonitor:
    """SENTINEL MONITOR, then SENTINEL SET of the options and credentials."""

    name: str
    monitor: Monitor


@dataclass(frozen=True)
class RemoveMonitor:
    """SENTINEL REMOVE."""

    name: str
    reason: str


@dataclass(frozen=True)
class SetMonitorOptions:
    """SENTINEL SET of options that drifted (a settings change)."""

    name: str
    options: tuple[tuple[str, str], ...]


SentinelAction = AddMonitor | RemoveMonitor | SetMonitorOptions


def plan_sentinel_actions(
    desired: Mapping[str, Monitor | None], observed: Mapping[str, ObservedMonitor]
) -> list[SentinelAction]:
    """Decide the SENTINEL commands that make what Sentinel monitors match ``desired`` (see
    ``plan_desired_monitors``).

    - An ``amr-`` monitor that is not desired: removed (monitors without the prefix are not amr's).
    - A desired monitor Sentinel lacks: added.
    - A monitor at another address than the primary (a switchover done outside Sentinel): removed and
      added again at the primary, unless Sentinel is handling that database (down or failing over).
    - A monitor whose quorum or options differ: those are set.
    """
    actions: list[SentinelAction] = []
    for name in sorted(observed):
        if name.startswith(MONITOR_PREFIX) and name not in desired:
            actions.append(RemoveMonitor(name, "no HA NoCluster database by that name"))
    for name in sorted(desired):
        want = desired[name]
        if want is None:
            continue
        seen = observed.get(name)
        if seen is None:
            actions.append(AddMonitor(name, want))
            continue
        if (seen.host, seen.port) != (want.host, want.port):
            if not seen.busy:
                actions += [
                    RemoveMonitor(name, f"the primary moved from {seen.host}:{seen.port}"),
                    AddMonitor(name, want),
                ]
            continue
        drift = tuple((k, v) for k, v in want.options if seen.options.get(k) != v)
        if seen.quorum != want.quorum:
            drift = (("quorum", str(want.quorum)), *drift)
        if drift:
            actions.append(SetMonitorOptions(name, drift))
    return actions


def describe_sentinel_actions(actions: list[SentinelAction]) -> list[str]:
    """One outcome line per action, for logs and tests; never a credential."""
    out = []
    for a in actions:
        if isinstance(a, AddMonitor):
            out.append(f"sentinel monitors {a.name} at {a.monitor.host}:{a.monitor.port}")
        elif isinstance(a, RemoveMonitor):
            out.append(f"sentinel no longer monitors {a.name}: {a.reason}")
        else:
            settings = ", ".join(f"{k} {v}" for k, v in a.options)
            out.append(f"sentinel monitor {a.name} set {settings}")
    return out


# Sentinel's compiled-in periods that amr shortens at runtime (SENTINEL DEBUG; they are not kept in
# sentinel.conf, so the keeper sets them again after every Sentinel restart):
# - info-period: Sentinel asks replicas for INFO only every 10 s by default, and refuses to promote a
#   replica whose INFO is older than five ping periods once the primary is down, so a failover could
#   abort ("no good slave") and wait 2 x failover-timeout. It also learns that its promotion took
#   effect only from INFO, and until then cannot handle the next failure. Twice a second.
# - ping-period: it also paces reconnects; right after a failover Sentinel's first link to the new
#   primary could take a whole second, long enough for a 1 s down-after to call it down again.
SENTINEL_TIMINGS: tuple[tuple[str, int], ...] = (("info-period", 500), ("ping-period", 250))


def parse_sentinel_timings(reply: object) -> dict[str, int]:
    """Read ``SENTINEL DEBUG`` (a flat list of name, value or a mapping) into lower-case names."""
    pairs: list[tuple[object, object]] = []
    if isinstance(reply, Mapping):
        pairs = list(reply.items())
    elif isinstance(reply, list):
        pairs = list(zip(reply[::2], reply[1::2], strict=False))
    out = {}
    for name, value in pairs:
        try:
            out[_text(name).lower()] = int(_text(value))
        except ValueError:
            continue
    return out


def plan_sentinel_timings(observed: Mapping[str, int]) -> list[tuple[str, int]]:
    """The periods (``SENTINEL_TIMINGS``) Sentinel does not run with yet."""
    return [(name, value) for name, value in SENTINEL_TIMINGS if observed.get(name) != value]
