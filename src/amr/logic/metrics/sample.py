"""One node's state at one instant, read from ``INFO everything`` and ``CLIENT LIST``.

The collector asks both inside one MULTI/EXEC, so no other client's command runs between them: the
engine's ``total_commands_processed`` and every connection's ``tot-cmds`` (Valkey 8) are read at the
same point, which is what makes amr's own commands subtractable exactly (``amr.logic.metrics.deltas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from amr.logic.security.node_credentials import INTERNAL_USER_PREFIX

# The counters of INFO the metrics use: monotonic while the node runs (a restart or CONFIG RESETSTAT
# starts them again from zero).
COUNTER_FIELDS = (
    "total_commands_processed", "keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys",
    "total_net_input_bytes", "total_net_output_bytes", "eventloop_duration_sum",
)  # fmt: skip
# Instant values (gauges).
GAUGE_FIELDS = ("used_memory", "maxmemory", "connected_clients")


@dataclass(frozen=True)
class Connection:
    """One line of CLIENT LIST, as far as metrics care: who it is and how many commands it ran."""

    id: int
    user: str
    flags: str
    commands: int

    @property
    def internal(self) -> bool:
        """amr's own connection (its users are ``amr-*``) or a replication link (``M``: this node's
        link to its primary, whose commands are the primary's writes again; ``S``: a replica's link,
        whose REPLCONF ACKs the node counts)."""
        return self.user.startswith(INTERNAL_USER_PREFIX) or "M" in self.flags or "S" in self.flags


@dataclass(frozen=True)
class NodeSample:
    """A node's counters and gauges at one instant (``at``, seconds since the epoch)."""

    at: float
    run_id: str
    role: str  # "master" or "slave", as INFO says
    counters: Mapping[str, int] = field(default_factory=dict)
    gauges: Mapping[str, int] = field(default_factory=dict)
    keys: int = 0
    cpu_seconds: float = 0.0  # used_cpu_sys + used_cpu_user
    # commandstats: calls and microseconds per command name ("get", "client|list").
    calls: Mapping[str, int] = field(default_factory=dict)
    usec: Mapping[str, int] = field(default_factory=dict)
    # tot-cmds of amr's own connections and replication links, by client id.
    internal: Mapping[int, int] = field(default_factory=dict)

    @property
    def primary(self) -> bool:
        return self.role == "master"


def parse_info(text: str) -> dict[str, str]:
    """INFO's ``name:value`` lines (sections and comments left out)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if sep:
            fields[name] = value
    return fields


def parse_client_list(text: str) -> list[Connection]:
    """CLIENT LIST's lines; a line without ``id`` or ``tot-cmds`` (an engine before Valkey 8) is left
    out, so its connections are never taken for amr's."""
    connections = []
    for line in text.splitlines():
        fields = dict(part.partition("=")[::2] for part in line.split(" ") if "=" in part)
        try:
            connections.append(
                Connection(
                    int(fields["id"]),
                    fields.get("user", ""),
                    fields.get("flags", ""),
                    int(fields["tot-cmds"]),
                )
            )
        except (KeyError, ValueError):
            continue
    return connections


def _float(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return int(_float(value))


def _keys(fields: Mapping[str, str]) -> int:
    """Keys in every logical database (``db0:keys=3,expires=0,avg_ttl=0``)."""
    total = 0
    for name, value in fields.items():
        if name.startswith("db") and name[2:].isdigit():
            for part in value.split(","):
                key, _, count = part.partition("=")
                if key == "keys":
                    total += _int(count)
    return total


def _commandstats(fields: Mapping[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    calls: dict[str, int] = {}
    usec: dict[str, int] = {}
    for name, value in fields.items():
        if not name.startswith("cmdstat_"):
            continue
        command = name.removeprefix("cmdstat_")
        stats = dict(part.partition("=")[::2] for part in value.split(","))
        calls[command] = _int(stats.get("calls"))
        usec[command] = _int(stats.get("usec"))
    return calls, usec


def parse_sample(at: float, info: str, client_list: str = "") -> NodeSample:
    """A node's sample from its ``INFO everything`` and ``CLIENT LIST`` texts read together."""
    fields = parse_info(info)
    calls, usec = _commandstats(fields)
    cpu = _float(fields.get("used_cpu_sys")) + _float(fields.get("used_cpu_user"))
    return NodeSample(
        at=at,
        run_id=fields.get("run_id", ""),
        role=fields.get("role", ""),
        counters={name: _int(fields.get(name)) for name in COUNTER_FIELDS},
        gauges={name: _int(fields.get(name)) for name in GAUGE_FIELDS},
        keys=_keys(fields),
        cpu_seconds=cpu,
        calls=calls,
        usec=usec,
        internal={c.id: c.commands for c in parse_client_list(client_list) if c.internal},
    )
