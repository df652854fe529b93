"""Automatic failover of HA databases: the watch the control plane publishes, and the
coordinator's decisions on probe snapshots (time injected as ``now``)."""

from __future__ import annotations

import asyncio
import dataclasses
import stat
from pathlib import Path

import pytest

from amr.errors import ConfigError
from amr.ha.watch import WatchFile
from amr.logic.ha.failover import (
    Takeover,
    describe_demotion,
    describe_ha_state,
    describe_takeover,
    down_for,
    plan_attempts_to_keep,
    plan_demotions,
    plan_failovers,
)
from amr.logic.ha.replication import ReplicationView, parse_replication_view
from amr.logic.ha.watch import parse_ha_watch, plan_ha_watch, plan_monitor_watch, render_ha_watch
from amr.logic.outcomes import Outcome, Severity
from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.ha import HaWatch, NodeProbe, WatchedDatabase, WatchedNode, WatchedShard
from amr.model.node import Role
from amr.model.resources import Cluster, Database, NodeAssignment, ResourceGroup
from amr.reconciler.ha_watch import ha_watch_writer
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNodeBackend

# -- the watch -------------------------------------------------------------------------------------

P = WatchedNode("d1-0-0", "/h/run/d1-0-0.sock", 8500)
R = WatchedNode("d1-0-1", "/h/run/d1-0-1.sock", 8501)
R2 = WatchedNode("d1-0-2", "/h/run/d1-0-2.sock", 8502)
DB = WatchedDatabase("/subscriptions/s/.../databases/default", "d1", (WatchedShard(0, (P, R)),))
WATCH = HaWatch((DB,))


def _cluster(name: str, ha: Toggle = Toggle.ENABLED) -> Cluster:
    return Cluster("sub", "rg", name, "eastus", "Balanced_B0", Toggle.ENABLED, high_availability=ha)


def _db(name: str, uid: str, policy: ClusteringPolicy, **kw: object) -> Database:
    nodes = (
        NodeAssignment(f"{uid}-0-0", 0, Role.PRIMARY, 8500),
        NodeAssignment(f"{uid}-0-1", 0, Role.REPLICA, 8501),
    )
    fields: dict[str, object] = dict(
        subscription_id="sub", resource_group="rg", cluster_name=name, uid=uid, port=10000,
        primary_key="k1", secondary_key="k2", clustering_policy=policy, nodes=nodes,
        provisioning_state=ProvisioningState.SUCCEEDED,
    )  # fmt: skip
    fields.update(kw)
    return Database(**fields)  # type: ignore[arg-type]


def test_the_watch_lists_ha_databases_with_their_shards_and_mode() -> None:
    clusters = {
        c.key: c
        for c in (_cluster("oss"), _cluster("ent"), _cluster("noc"), _cluster("noha", Toggle.DISABLED))
    }
    dbs = [
        _db("oss", "d1", ClusteringPolicy.OSS_CLUSTER),
        _db("ent", "d2", ClusteringPolicy.ENTERPRISE_CLUSTER, provisioning_state=ProvisioningState.CREATING),
        _db("noc", "d3", ClusteringPolicy.NO_CLUSTER),
        _db(
            "noha",
            "d4",
            ClusteringPolicy.OSS_CLUSTER,
            nodes=(NodeAssignment("d4-0-0", 0, Role.PRIMARY, 8510),),
        ),
        _db("gone", "d5", ClusteringPolicy.OSS_CLUSTER),  # no cache record
    ]
    watch = plan_ha_watch(dbs, clusters, "/h/run")
    assert [(d.uid, d.cluster) for d in watch.databases] == [("d1", True), ("d2", True), ("d3", False)]
    # A database whose nodes convert to cluster mode (restarting on purpose) is left out meanwhile.
    paused = plan_ha_watch(dbs, clusters, "/h/run", frozenset({"d3"}))
    assert [d.uid for d in paused.databases] == ["d1", "d2"]
    (shard,) = watch.databases[0].shards
    assert shard.shard == 0
    assert shard.nodes == (
        WatchedNode("d1-0-0", "/h/run/d1-0-0.sock", 8500),
        WatchedNode("d1-0-1", "/h/run/d1-0-1.sock", 8501),
    )
    assert watch.databases[0].id == dbs[0].id
    # The metric collector's watch has every database with a cache record, HA or not, paused or not.
    monitored = plan_monitor_watch(dbs, clusters, "/h/run")
    assert [d.uid for d in monitored.databases] == ["d1", "d2", "d3", "d4"]


@pytest.mark.parametrize("state", [ProvisioningState.FAILED, ProvisioningState.DELETING])
def test_failed_and_deleting_databases_are_not_watched(state: ProvisioningState) -> None:
    # A delete stops the nodes one by one: that must not look like a failed primary.
    clusters = {_cluster("oss").key: _cluster("oss")}
    assert (
        plan_ha_watch(
            [_db("oss", "d1", ClusteringPolicy.OSS_CLUSTER, provisioning_state=state)], clusters, "/r"
        )
        == HaWatch()
    )


def test_the_watch_file_round_trips() -> None:
    two_shards = WatchedDatabase("id2", "d2", (WatchedShard(0, (P,)), WatchedShard(1, (R, R2))))
    standalone = WatchedDatabase("id3", "d3", (WatchedShard(0, (P, R)),), cluster=False)
    watch = HaWatch((DB, two_shards, standalone))
    assert parse_ha_watch(render_ha_watch(watch)) == watch
    assert parse_ha_watch(render_ha_watch(HaWatch())) == HaWatch()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"version": 2, "databases": []}',
        '{"version": 1}',
        '{"version": 1, "databases": [{"id": 1}]}',
        '{"version": 1, "databases": [{"id": "i", "uid": "u", "shards": [], "cluster": "no"}]}',
    ],
)
def test_a_malformed_watch_file_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_ha_watch(text)


def test_the_watch_file_reader_means_nothing_when_missing_or_malformed(tmp_path: Path) -> None:
    path = tmp_path / "watch.json"
    reader = WatchFile(path)
    assert reader.read() is None
    path.write_text(render_ha_watch(WATCH))
    assert reader.read() == WATCH
    assert reader.read() == WATCH  # unchanged: not read again
    path.write_text("{not json")
    assert reader.read() is None
    path.unlink()
    assert reader.read() is None


# -- INFO replication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "view"),
    [
        (
            "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_repl_offset:4242\r\n",
            ReplicationView("master", offset=4242),
        ),
        (
            "role:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:8500\r\nmaster_link_status:up\r\nslave_repl_offset:99\r\n",
            ReplicationView("slave", 8500, "up", True, 99),
        ),
        (  # the primary just died: the link is down since 0 s, so it had been in sync
            "role:slave\r\nmaster_port:8500\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:0\r\nslave_repl_offset:99\r\n",
            ReplicationView("slave", 8500, "down", True, 99),
        ),
        (  # never synced since it started: nothing to promote
            "role:slave\r\nmaster_port:8500\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:-1\r\n",
            ReplicationView("slave", 8500, "down", False, 0),
        ),
        ("loading:1\r\n", None),
        ("", None),
    ],
)
def test_parse_replication_view(text: str, view: ReplicationView | None) -> None:
    assert parse_replication_view(text) == view


# -- the decision ----------------------------------------------------------------------------------

NOW = 1000.0
DOWN_AFTER_MS = 1000
TIMEOUT_MS = 10000


def up(node: WatchedNode, role: str = "master", master: WatchedNode | None = None, synced: bool = True,
       offset: int = 100, at: float = NOW) -> NodeProbe:  # fmt: skip
    return NodeProbe(node.name, True, at, 0.0, role, master.port if master else None,
                     "down" if master else "", synced, offset)  # fmt: skip


def down(
    node: WatchedNode, since: float | None, role: str | None = "master", watched_since: float = 0.0
) -> NodeProbe:
    return NodeProbe(node.name, False, since, watched_since, role)


def probes(*items: NodeProbe) -> dict[str, NodeProbe]:
    return {p.name: p for p in items}


TAKEOVER = Takeover(DB.id, "d1", 0, R, P.name, 1.25)


@pytest.mark.parametrize(
    ("seen", "attempts", "expected"),
    [
        # Every node answers: nothing.
        (probes(up(P), up(R, "slave", P)), {}, []),
        # The primary stopped answering 1.25 s ago and its replica answers and follows it: promote.
        (probes(down(P, NOW - 1.25), up(R, "slave", P)), {}, [TAKEOVER]),
        # Not long enough yet.
        (probes(down(P, NOW - 0.9), up(R, "slave", P)), {}, []),
        # The replica does not answer either: nobody to promote.
        (probes(down(P, NOW - 5), down(R, NOW - 5, "slave")), {}, []),
        # The replica follows another node (a failover already happened elsewhere).
        (probes(down(P, NOW - 5), up(R, "slave", R2)), {}, []),
        # The replica never synced since it started (everything restarting): it holds no data.
        (probes(down(P, NOW - 5), up(R, "slave", P, synced=False)), {}, []),
        # A role we do not know (busy node) is not a replica to promote.
        (probes(down(P, NOW - 5), dataclasses.replace(up(R), role=None)), {}, []),
        # The replica itself is down while the primary answers: nothing to do.
        (probes(up(P), down(R, NOW - 5, "slave")), {}, []),
        # A takeover was sent 3 s ago: it is settling, never a second one.
        (probes(down(P, NOW - 1.25), up(R, "slave", P)), {("d1", 0): (NOW - 3, R.name)}, []),
        # ... but after failover_timeout_ms it is tried again.
        (probes(down(P, NOW - 1.25), up(R, "slave", P)), {("d1", 0): (NOW - 11, R.name)}, [TAKEOVER]),
        # Another shard's attempt does not hold this one back.
        (probes(down(P, NOW - 1.25), up(R, "slave", P)), {("d1", 1): (NOW - 1, R.name)}, [TAKEOVER]),
        # A primary that never answered since the coordinator started counts from then.
        (probes(down(P, None, None, watched_since=NOW - 1.25), up(R, "slave", P)), {}, [TAKEOVER]),
        (probes(down(P, None, None, watched_since=NOW - 0.5), up(R, "slave", P)), {}, []),
        # Not probed yet: nothing.
        (probes(up(R, "slave", P)), {}, []),
    ],
)
def test_plan_failovers(
    seen: dict[str, NodeProbe], attempts: dict[tuple[str, int], tuple[float, str]], expected: list[Takeover]
) -> None:
    assert plan_failovers(WATCH, seen, NOW, DOWN_AFTER_MS, attempts, TIMEOUT_MS) == expected


def test_a_loading_primary_is_alive() -> None:
    # PING answers -LOADING while the dataset loads: any answer is an answer.
    loading = NodeProbe(P.name, True, NOW, 0.0, None)
    assert plan_failovers(WATCH, probes(loading, up(R, "slave", P)), NOW, 1000, {}, TIMEOUT_MS) == []


def test_nothing_without_a_watch() -> None:
    seen = probes(down(P, NOW - 9), up(R, "slave", P))
    assert plan_failovers(None, seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS) == []
    assert plan_failovers(HaWatch(), seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS) == []


def test_of_several_replicas_the_most_advanced_is_promoted_one_per_shard() -> None:
    watch = HaWatch((dataclasses.replace(DB, shards=(WatchedShard(0, (P, R, R2)),)),))
    seen = probes(down(P, NOW - 2), up(R, "slave", P, offset=50), up(R2, "slave", P, offset=70))
    (takeover,) = plan_failovers(watch, seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS)
    assert takeover.replica == R2
    tie = probes(down(P, NOW - 2), up(R, "slave", P, offset=70), up(R2, "slave", P, offset=70))
    assert plan_failovers(watch, tie, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS)[0].replica == R


def test_shards_fail_over_independently() -> None:
    a, b = WatchedNode("d1-1-0", "/s/a", 8600), WatchedNode("d1-1-1", "/s/b", 8601)
    watch = HaWatch((dataclasses.replace(DB, shards=(WatchedShard(0, (P, R)), WatchedShard(1, (a, b)))),))
    seen = probes(down(P, NOW - 2), up(R, "slave", P), up(a, "slave", b), down(b, NOW - 3))
    planned = plan_failovers(watch, seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS)
    assert [(t.shard, t.replica.name, t.failed_primary) for t in planned] == [
        (0, R.name, P.name),
        (1, a.name, b.name),
    ]


def test_down_for() -> None:
    assert down_for(up(P), NOW) == 0.0
    assert down_for(down(P, NOW - 1.5), NOW) == pytest.approx(1.5)
    assert down_for(down(P, None, watched_since=NOW - 0.25), NOW) == pytest.approx(0.25)


# -- outcomes --------------------------------------------------------------------------------------


def test_outcome_lines() -> None:
    assert describe_takeover(TAKEOVER) == Outcome(
        Severity.WARNING,
        f"promoted node d1-0-1 of database {DB.id} shard 0 after primary d1-0-0 did not answer for 1.2 s",
    )
    failed = describe_takeover(TAKEOVER, "ERR boom")
    assert failed.severity is Severity.ERROR
    assert failed.message.startswith("could not promote node d1-0-1") and failed.message.endswith("ERR boom")
    assert describe_ha_state(None, {}, NOW, 1000) == "no HA watch file: nothing to watch"
    assert describe_ha_state(HaWatch(), {}, NOW, 1000).startswith("no clustered database")
    assert describe_ha_state(WATCH, probes(up(P), up(R, "slave", P)), NOW, 1000) == (
        "watching 1 database(s), 2 node(s): every node answers"
    )
    waiting = describe_ha_state(WATCH, probes(down(P, NOW - 0.2), up(R, "slave", P)), NOW, 1000)
    assert waiting == f"primary d1-0-0 of database {DB.id} shard 0 does not answer; failover after 1000 ms"
    # The line carries no durations: it changes (and is logged) only when the picture does.
    assert describe_ha_state(WATCH, probes(down(P, NOW - 0.3), up(R, "slave", P)), NOW, 1000) == waiting
    stuck = describe_ha_state(WATCH, probes(down(P, NOW - 5), up(R, "slave", P, synced=False)), NOW, 1000)
    assert "never synced" in stuck
    assert describe_ha_state(WATCH, probes(up(P), down(R, NOW - 5, "slave")), NOW, 1000) == (
        f"node d1-0-1 of database {DB.id} shard 0 does not answer"
    )


# -- publishing the watch --------------------------------------------------------------------------


def test_the_reconciler_publishes_the_watch_only_when_it_changes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    store = SqlStore.open_file(tmp_path / "amr.db")
    written: list[HaWatch] = []
    write = ha_watch_writer(settings)

    def record(watch: HaWatch) -> None:
        written.append(watch)
        write(watch)

    reconciler = Reconciler(
        settings,
        store,
        FakeNodeBackend(),
        CredentialMasters("pw"),
        lambda t: None,
        lambda p: True,
        write_ha_watch=record,
    )
    try:
        store.insert(ResourceGroup("sub", "rg", "eastus"))
        cluster = dataclasses.replace(
            _cluster("oss"),
            provisioning_state=ProvisioningState.SUCCEEDED,
            resource_state=ResourceState.RUNNING,
        )
        store.insert(cluster)
        nodes = plan_nodes("dabc", 1, True, (), [8500, 8501])
        store.insert(_db("oss", "dabc", ClusteringPolicy.OSS_CLUSTER, nodes=nodes))
        asyncio.run(reconciler.tick())
        asyncio.run(reconciler.tick())
        assert len(written) == 1
        path = tmp_path / "ha" / "watch.json"
        watch = parse_ha_watch(path.read_text())
        assert [n.name for n in watch.databases[0].shards[0].nodes] == ["dabc-0-0", "dabc-0-1"]
        assert watch.databases[0].shards[0].nodes[0].socket == f"{tmp_path}/run/dabc-0-0.sock"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        # A restarted control plane finds the same watch on disk and leaves the file alone.
        before = path.stat().st_mtime_ns
        write(watch)
        assert path.stat().st_mtime_ns == before
    finally:
        store.close()


def test_a_takeover_holds_its_shard_back_until_the_promoted_node_is_primary() -> None:
    attempts = {("d1", 0): (NOW - 3, R.name)}
    settling = probes(down(P, NOW - 3), up(R, "slave", P))
    assert plan_attempts_to_keep(attempts, settling, NOW, TIMEOUT_MS) == attempts
    settled = probes(down(P, NOW - 3), up(R, "master"))
    assert plan_attempts_to_keep(attempts, settled, NOW, TIMEOUT_MS) == {}
    # A promoted node that does not answer has not settled; the timeout still ends the hold.
    silent = probes(down(P, NOW - 3), down(R, NOW - 1, "master"))
    assert plan_attempts_to_keep(attempts, silent, NOW, TIMEOUT_MS) == attempts
    assert plan_attempts_to_keep(attempts, silent, NOW + 8, TIMEOUT_MS) == {}


def test_a_node_whose_process_is_gone_fails_over_sooner_than_a_silent_one() -> None:
    # Refused connections for 0.3 s (the process is not running) beat the 1 s patience a node that
    # only does not answer gets; refused for less, or merely silent for 0.3 s, is not enough.
    gone = dataclasses.replace(down(P, NOW - 0.3), gone_since=NOW - 0.3)
    (takeover,) = plan_failovers(WATCH, probes(gone, up(R, "slave", P)), NOW, 1000, {}, TIMEOUT_MS, 250)
    assert takeover.replica == R
    just_gone = dataclasses.replace(down(P, NOW - 0.3), gone_since=NOW - 0.2)
    assert plan_failovers(WATCH, probes(just_gone, up(R, "slave", P)), NOW, 1000, {}, TIMEOUT_MS, 250) == []
    silent = down(P, NOW - 0.3)
    assert plan_failovers(WATCH, probes(silent, up(R, "slave", P)), NOW, 1000, {}, TIMEOUT_MS, 250) == []
    # Without a separate threshold, gone waits as long as silent.
    assert plan_failovers(WATCH, probes(gone, up(R, "slave", P)), NOW, 1000, {}, TIMEOUT_MS) == []


def test_a_replica_behind_the_silent_primarys_last_offset_is_promoted_only_after_lagging_after_ms() -> None:
    # The primary last answered at offset 5000; its replica has 4000: promoting it now would drop
    # 1000 bytes of acknowledged writes, so a stalled primary gets 10 s to answer again.
    silent = dataclasses.replace(down(P, NOW - 1.5), offset=5000)
    behind = up(R, "slave", P, offset=4000)
    assert plan_failovers(WATCH, probes(silent, behind), NOW, 1000, {}, TIMEOUT_MS, 250, 10000) == []
    state = describe_ha_state(WATCH, probes(silent, behind), NOW, 1000, 10000)
    assert "has not received all it acknowledged: failover after 10000 ms" in state
    # Past it, the replica is promoted (a hung primary must not keep the shard down for ever) ...
    long_silent = dataclasses.replace(down(P, NOW - 10.5), offset=5000)
    (takeover,) = plan_failovers(WATCH, probes(long_silent, behind), NOW, 1000, {}, TIMEOUT_MS, 250, 10000)
    assert takeover.replica == R
    # ... as it is at once when it has everything the primary last reported ...
    caught_up = up(R, "slave", P, offset=5000)
    (takeover,) = plan_failovers(WATCH, probes(silent, caught_up), NOW, 1000, {}, TIMEOUT_MS, 250, 10000)
    assert takeover.replica == R
    assert "failing over" in describe_ha_state(WATCH, probes(silent, caught_up), NOW, 1000, 10000)
    # ... or when the primary's process is gone (nothing can bring its writes back).
    gone = dataclasses.replace(silent, gone_since=NOW - 0.3)
    (takeover,) = plan_failovers(WATCH, probes(gone, behind), NOW, 1000, {}, TIMEOUT_MS, 250, 10000)
    assert takeover.replica == R


# -- NoCluster: REPLICAOF NO ONE, and a replaced primary made a replica of its successor -------------

STANDALONE = HaWatch((dataclasses.replace(DB, cluster=False),))


def test_a_nocluster_replica_is_promoted_with_replicaof_no_one() -> None:
    seen = probes(down(P, NOW - 1.25), up(R, "slave", P))
    (takeover,) = plan_failovers(STANDALONE, seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS)
    assert (takeover.replica, takeover.command) == (R, ("REPLICAOF", "NO", "ONE"))
    (clustered,) = plan_failovers(WATCH, seen, NOW, DOWN_AFTER_MS, {}, TIMEOUT_MS)
    assert clustered.command == ("CLUSTER", "FAILOVER", "TAKEOVER")


def _primary(node: WatchedNode, replid: str, replid2: str = "0" * 40) -> NodeProbe:
    return dataclasses.replace(up(node), replid=replid, replid2=replid2)


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        # The old primary hung, was replaced, and answers again as a primary: it follows its successor.
        (probes(_primary(P, "a" * 40), _primary(R, "b" * 40, "a" * 40)), [(P, R)]),
        (probes(_primary(R, "b" * 40, "a" * 40), _primary(P, "a" * 40)), [(P, R)]),
        # One primary and its replica: nothing to do.
        (probes(_primary(P, "a" * 40), up(R, "slave", P)), []),
        # Two primaries, neither replaced the other: nothing says which holds the newer data.
        (probes(_primary(P, "a" * 40), _primary(R, "b" * 40, "c" * 40)), []),
        # The successor does not answer: nothing to follow.
        (probes(_primary(P, "a" * 40), down(R, NOW - 5)), []),
        # No replication ids known (an old probe): nothing.
        (probes(up(P), up(R)), []),
    ],
)
def test_plan_demotions(seen: dict[str, NodeProbe], expected: list[tuple[WatchedNode, WatchedNode]]) -> None:
    planned = plan_demotions(STANDALONE, seen)
    assert [(d.stale, d.successor) for d in planned] == expected
    # A Valkey Cluster demotes a replaced primary by itself: never in cluster mode.
    assert plan_demotions(WATCH, seen) == []
    assert plan_demotions(None, seen) == []
    for d in planned:
        assert describe_demotion(d) == Outcome(
            Severity.WARNING,
            f"made node {P.name} of database {DB.id} shard 0, a primary replaced by {R.name}, a replica of it",
        )
        assert describe_demotion(d, "ERR no").severity is Severity.ERROR


def test_a_primary_says_its_replication_ids() -> None:
    view = parse_replication_view(
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:" + "b" * 40
        + "\r\nmaster_replid2:" + "a" * 40 + "\r\nmaster_repl_offset:42\r\n"
    )  # fmt: skip
    assert view == ReplicationView("master", offset=42, replid="b" * 40, replid2="a" * 40)
