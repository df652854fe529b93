"""What one node did between two consecutive samples: its counters' increases.

Counters start again from zero when the node restarts (a new ``run_id``) or its statistics are
reset (a counter that went down): the new value is then the increase, since everything it counts
happened after the restart. A delta is never negative and never counts anything twice. A failover
changes roles, not counters: each node's counters go on, and the roles decide which nodes a metric
adds up (``amr.logic.metrics.azure``).

Commands of tenants: the engine's ``total_commands_processed`` counts every command, amr's own
probes included. Each sample also holds ``tot-cmds`` of every connection of amr's users and of the
replication links, read in the same MULTI/EXEC as INFO; their increases are subtracted. amr's
connections stay open (the HA probes, the gateway's ROLE polls, the control plane's pools, the
collector itself), so each is followed from sample to sample by its client id; a new one counts from
zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from amr.logic.metrics.sample import NodeSample

TENANT_COMMANDS = "tenant_commands"


@dataclass(frozen=True)
class NodeDeltas:
    """A node's increases over ``seconds`` ending with sample ``cur``."""

    seconds: float
    restarted: bool
    counters: Mapping[str, int] = field(default_factory=dict)
    calls: Mapping[str, int] = field(default_factory=dict)
    usec: Mapping[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0


def _increase(prev: int | None, cur: int, restarted: bool) -> int:
    if prev is None or restarted or cur < prev:
        return cur
    return cur - prev


def _increases(prev: Mapping[str, int], cur: Mapping[str, int], restarted: bool) -> dict[str, int]:
    return {name: _increase(prev.get(name), value, restarted) for name, value in cur.items()}


def plan_deltas(prev: NodeSample | None, cur: NodeSample, max_gap: float) -> NodeDeltas | None:
    """The increases from ``prev`` to ``cur``; None when there is no interval to speak of: no
    previous sample, or one older than ``max_gap`` seconds (the collector was stopped: that time
    reads as no data, never as zeros or as one huge interval)."""
    if prev is None:
        return None
    seconds = cur.at - prev.at
    if seconds <= 0 or seconds > max_gap:
        return None
    restarted = prev.run_id != cur.run_id
    counters = _increases(prev.counters, cur.counters, restarted)
    internal = sum(_increase(prev.internal.get(i), n, restarted) for i, n in cur.internal.items())
    counters[TENANT_COMMANDS] = max(counters.get("total_commands_processed", 0) - internal, 0)
    cpu = (
        cur.cpu_seconds
        if restarted or cur.cpu_seconds < prev.cpu_seconds
        else cur.cpu_seconds - prev.cpu_seconds
    )
    return NodeDeltas(
        seconds=seconds,
        restarted=restarted,
        counters=counters,
        calls=_increases(prev.calls, cur.calls, restarted),
        usec=_increases(prev.usec, cur.usec, restarted),
        cpu_seconds=cpu,
    )
