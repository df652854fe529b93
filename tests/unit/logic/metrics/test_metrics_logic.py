"""Metric collection's pure decisions (amr.logic.metrics): INFO and CLIENT LIST read into a sample,
counters turned into per-interval increases across restarts, and Azure's metrics computed from a
database's nodes."""

from __future__ import annotations

import pytest

from amr.logic.metrics.azure import (
    METRICS,
    GatewayCounts,
    NodeInterval,
    compute_metrics,
)
from amr.logic.metrics.deltas import TENANT_COMMANDS, plan_deltas
from amr.logic.metrics.gateway import GatewaySample, parse_gateway_answer, plan_gateway_deltas
from amr.logic.metrics.sample import NodeSample, parse_client_list, parse_sample

INFO = (
    "# Server\r\nredis_version:7.2.4\r\nrun_id:abc\r\n\r\n# Clients\r\nconnected_clients:3\r\n"
    "# Memory\r\nused_memory:1000000\r\nmaxmemory:4000000\r\n"
    "# Stats\r\ntotal_commands_processed:120\r\nkeyspace_hits:7\r\nkeyspace_misses:2\r\n"
    "evicted_keys:1\r\nexpired_keys:4\r\ntotal_net_input_bytes:500\r\ntotal_net_output_bytes:900\r\n"
    "eventloop_duration_sum:1000\r\n"
    "# Replication\r\nrole:master\r\n# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n"
    "# Commandstats\r\ncmdstat_get:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
    "cmdstat_client|list:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
    "# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=0\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n"
)
CLIENTS = (
    "id=2 addr=/r.sock:0 fd=9 name= flags=N user=default tot-cmds=40\n"
    "id=3 addr=/r.sock:0 fd=10 name= flags=N user=amr-ha tot-cmds=30\n"
    "id=4 addr=127.0.0.2:1 fd=11 name= flags=S user=amr-replication tot-cmds=5\n"
    "id=5 addr=127.0.0.2:2 fd=12 name= flags=M user=(superuser) tot-cmds=6\n"
    "id=6 addr=/r.sock:0 fd=13 name= flags=N user=default\n"  # no tot-cmds: an engine before Valkey 8
)


def test_a_sample_reads_info_everything_and_client_list() -> None:
    s = parse_sample(100.0, INFO, CLIENTS)
    assert (s.run_id, s.role, s.primary, s.keys) == ("abc", "master", True, 11)
    assert s.counters["total_commands_processed"] == 120
    assert (s.counters["keyspace_hits"], s.counters["keyspace_misses"]) == (7, 2)
    assert s.gauges == {"used_memory": 1000000, "maxmemory": 4000000, "connected_clients": 3}
    assert s.cpu_seconds == pytest.approx(3.75)
    assert s.calls == {"get": 5, "client|list": 3}
    assert s.usec == {"get": 50, "client|list": 30}
    # amr's users and both kinds of replication link; tenants' connections are not followed.
    assert s.internal == {3: 30, 4: 5, 5: 6}


def test_client_list_lines_without_counts_are_left_out() -> None:
    assert [c.id for c in parse_client_list(CLIENTS)] == [2, 3, 4, 5]
    assert parse_client_list("garbage\nid=x tot-cmds=1\n") == []


def sample(
    at: float, total: int, internal: dict[int, int] | None = None, run_id: str = "r1", role: str = "master",
    **counters: int,
) -> NodeSample:  # fmt: skip
    return NodeSample(
        at=at, run_id=run_id, role=role, counters={"total_commands_processed": total, **counters},
        internal=internal or {},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("prev", "cur", "total", "tenant"),
    [
        # Steady: amr's connection 3 ran 20 of the 50 commands.
        (sample(0, 100, {3: 10}), sample(10, 150, {3: 30}), 50, 30),
        # A new amr connection counts from zero; a closed one is no longer followed.
        (sample(0, 100, {3: 10}), sample(10, 150, {4: 5}), 50, 45),
        # The node restarted: everything since is the increase, amr's connections too.
        (sample(0, 100, {3: 10}), sample(10, 20, {3: 4}, run_id="r2"), 20, 16),
        # Statistics reset (same run): the counter went down, so its new value is the increase.
        (sample(0, 100), sample(10, 7), 7, 7),
        # Never negative.
        (sample(0, 100, {3: 10}), sample(10, 101, {3: 30}), 1, 0),
    ],
)
def test_deltas_across_restarts(prev: NodeSample, cur: NodeSample, total: int, tenant: int) -> None:
    d = plan_deltas(prev, cur, max_gap=25)
    assert d is not None
    assert d.counters["total_commands_processed"] == total
    assert d.counters[TENANT_COMMANDS] == tenant
    assert d.restarted == (prev.run_id != cur.run_id)


@pytest.mark.parametrize(
    ("prev", "cur"),
    [
        (None, sample(10, 5)),  # the first sample: a baseline only
        (sample(0, 5), sample(30, 9)),  # a gap (the collector was stopped): no data, not one big interval
        (sample(10, 5), sample(10, 9)),  # no time passed
    ],
)
def test_no_interval(prev: NodeSample | None, cur: NodeSample) -> None:
    assert plan_deltas(prev, cur, max_gap=25) is None


def test_command_stats_start_again_after_a_restart() -> None:
    prev = NodeSample(at=0, run_id="a", role="master", calls={"get": 10, "set": 4})
    cur = NodeSample(at=10, run_id="a", role="master", calls={"get": 13, "set": 4, "hget": 2})
    d = plan_deltas(prev, cur, 25)
    assert d is not None and d.calls == {"get": 3, "set": 0, "hget": 2}
    restarted = NodeSample(at=10, run_id="b", role="master", calls={"get": 1})
    d = plan_deltas(prev, restarted, 25)
    assert d is not None and d.calls == {"get": 1}


def test_the_table_has_azures_18_metrics_and_errors() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == 19 and names[-1] == "errors"
    assert len(set(names)) == 19
    by_name = {m.name: m for m in METRICS}
    assert (by_name["cacheRead"].unit, by_name["cacheRead"].aggregation) == ("BytesPerSecond", "Maximum")
    assert by_name["connectedclients"].dimensions == ("InstanceId",)
    assert by_name["cachehits"].dimensions == ()
    assert by_name["errors"].dimensions == ("InstanceId", "ErrorType")
    assert by_name["usedmemorypercentage"].unit == "Percent"


def node(
    name: str, role: str, prev_calls: dict[str, int], calls: dict[str, int], keys: int = 0,
    was: str | None = None, used: int = 0, maxmemory: int = 0, **counters: tuple[int, int],
) -> NodeInterval:  # fmt: skip
    before = {k: v[0] for k, v in counters.items()}
    after = {k: v[1] for k, v in counters.items()}
    prev = NodeSample(at=0, run_id="r", role=was or role, counters=before, calls=prev_calls)
    cur = NodeSample(
        at=10, run_id="r", role=role, counters=after, calls=calls, keys=keys,
        gauges={"used_memory": used, "maxmemory": maxmemory},
    )  # fmt: skip
    return NodeInterval(name, cur, plan_deltas(prev, cur, 25), prev.primary)


def test_a_database_with_a_primary_and_a_replica() -> None:
    # 6 SETs and 4 GETs (3 hits) on the primary; the replica replayed the 6 SETs and served 2 GETs.
    primary = node(
        "p", "master", {"set": 10, "get": 1}, {"set": 16, "get": 5}, keys=6, used=300, maxmemory=1000,
        keyspace_hits=(0, 3), keyspace_misses=(0, 1), total_commands_processed=(20, 30),
    )  # fmt: skip
    replica = node(
        "r", "slave", {"set": 10}, {"set": 16, "get": 2}, keys=6, used=200, maxmemory=1000,
        keyspace_hits=(0, 2), total_commands_processed=(20, 28),
    )  # fmt: skip
    v = compute_metrics([primary, replica], GatewayCounts({"gateway-0": 2, "gateway-1": 1}))
    assert v[("setcommands", ())] == 6  # the replica's replayed SETs are not counted again
    assert v[("getcommands", ())] == 6
    assert (v[("cachehits", ())], v[("cachemisses", ())]) == (5, 1)
    assert v[("totalkeys", ())] == 6
    assert v[("usedmemory", ())] == 500  # primary and replica, as Azure's
    assert v[("usedmemorypercentage", ())] == pytest.approx(30.0)
    assert v[("totalcommandsprocessed", ())] == 18
    assert v[("operationsPerSecond", ())] == pytest.approx(1.8)
    assert v[("connectedclients", ("gateway-0",))] == 2
    assert v[("geoReplicationHealthy", ())] == 1
    assert ("errors", ("r", "Failover")) not in v


def test_keys_and_memory_add_up_across_shards() -> None:
    shards = [node(f"s{i}", "master", {}, {"set": i}, keys=10 * i, used=100, maxmemory=400) for i in range(4)]
    v = compute_metrics(shards)
    assert v[("totalkeys", ())] == 60
    assert v[("setcommands", ())] == 6
    assert v[("usedmemorypercentage", ())] == pytest.approx(25.0)


def test_after_a_failover_the_new_primarys_sets_count_once() -> None:
    # The old primary took 3 SETs then died and came back as a replica (replaying 2 more); the new
    # primary replayed those 3 and took 2 itself.
    old = node("a", "slave", {"set": 0}, {"set": 5}, was="master")
    new = node("b", "master", {"set": 0}, {"set": 5}, was="slave")
    v = compute_metrics([old, new])
    assert v[("setcommands", ())] == 5
    assert v[("errors", ("b", "Failover"))] == 1


def test_a_gap_is_no_data_not_zeros() -> None:
    first = NodeInterval("p", NodeSample(at=0, run_id="r", role="master", keys=3), None)
    v = compute_metrics([first])
    assert ("cachehits", ()) not in v and ("totalcommandsprocessed", ()) not in v
    assert v[("totalkeys", ())] == 3  # gauges are read at the sample


@pytest.mark.parametrize(
    ("answer", "sample"),
    [
        (
            {"started": 5, "connections": {"db": 2}, "totals": {"db": {"connect": 3, "x": "y"}}},
            GatewaySample(5.0, {"db": 2}, {"db": {"connect": 3}}),
        ),
        ({"started": 5, "connections": "no", "totals": []}, GatewaySample(5.0, {}, {})),
        ({"clients": []}, None),  # not an answer to the stats question
        ({"started": True}, None),
    ],
)
def test_a_gateway_answer_is_read_defensively(
    answer: dict[str, object], sample: GatewaySample | None
) -> None:
    assert parse_gateway_answer(answer) == sample


@pytest.mark.parametrize(
    ("prev", "cur", "deltas"),
    [
        (None, {"connect": 5}, None),  # the first answer: a baseline
        ({"connect": 5, "bytesIn": 10}, {"connect": 8, "bytesIn": 25, "auth_failure": 2}, (3, 2, 15, 0)),
        ("restarted", {"connect": 2}, (2, 0, 0, 0)),  # a restarted worker counts from zero
    ],
)
def test_gateway_deltas(prev: object, cur: dict[str, int], deltas: tuple[int, ...] | None) -> None:
    before = None
    if prev == "restarted":
        before = GatewaySample(1.0, {}, {"db": {"connect": 9}})
    elif isinstance(prev, dict):
        before = GatewaySample(2.0, {}, {"db": prev})
    got = plan_gateway_deltas(before, GatewaySample(2.0, {}, {"db": cur}), "db")
    names = ("gatewayConnections", "gatewayAuthFailures", "gatewayBytesIn", "gatewayBytesOut")
    assert got == (None if deltas is None else dict(zip(names, deltas, strict=True)))


def test_cache_latency_is_the_data_commands_average() -> None:
    prev = NodeSample(at=0, run_id="r", role="master")
    cur = NodeSample(
        at=10, run_id="r", role="master",
        calls={"get": 3, "set": 1, "info": 100, "client|list": 10, "ping": 50},
        usec={"get": 6, "set": 4, "info": 90000, "client|list": 500, "ping": 50},
    )  # fmt: skip
    v = compute_metrics([NodeInterval("p", cur, plan_deltas(prev, cur, 25))])
    # amr's probes (INFO, CLIENT LIST, PING all the time) would make it look a hundred times slower.
    assert v[("cacheLatency", ("p",))] == pytest.approx(2.5)
    idle = NodeSample(at=20, run_id="r", role="master", calls={**cur.calls, "info": 200}, usec=cur.usec)
    assert ("cacheLatency", ("p",)) not in compute_metrics(
        [NodeInterval("p", idle, plan_deltas(cur, idle, 25))]
    )
