"""The exposition's view of the collector's ticks (amr.monitor.prometheus.PrometheusView): counters
add up each tick's increases, nodes get their shard and latest role, a database no longer watched
is forgotten, and the scrape token file is made private once and then kept."""

from __future__ import annotations

from pathlib import Path

from amr.logic.metrics.azure import NodeInterval
from amr.logic.metrics.sample import NodeSample
from amr.model.ha import HaWatch, WatchedDatabase, WatchedNode, WatchedShard
from amr.monitor.prometheus import PrometheusView, read_scrape_token

DB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c/databases/default"
WATCH = HaWatch(
    (
        WatchedDatabase(
            DB, "d1", (WatchedShard(0, (WatchedNode("d1-0-0", "/a", 1), WatchedNode("d1-0-1", "/b", 2))),)
        ),
    )
)


def interval(node: str, role: str) -> NodeInterval:
    return NodeInterval(node, NodeSample(at=1.0, run_id="r", role=role), None)


def test_ticks_add_up_counters_and_keep_the_latest_gauges() -> None:
    view = PrometheusView()
    intervals = {DB: [interval("d1-0-0", "master")]}
    view.record(10.0, WATCH, {DB: {("cachehits", ()): 2.0, ("totalkeys", ()): 4.0}}, intervals)
    view.record(11.0, WATCH, {DB: {("cachehits", ()): 3.0, ("totalkeys", ()): 5.0}}, intervals)
    db = view.databases[DB]
    assert db.totals == {("cachehits", ()): 5.0}
    assert db.latest[("totalkeys", ())] == 5.0
    assert db.nodes["d1-0-0"].primary is True and db.nodes["d1-0-1"].primary is None
    text = view.exposition()
    assert 'amr_cache_hits_total{subscription="s",resource_group="rg",cache="c",database="default"} 5' in text
    assert "amr_monitor_last_sample_timestamp_seconds 11" in text


def test_a_database_no_longer_watched_is_forgotten() -> None:
    view = PrometheusView()
    view.record(10.0, WATCH, {DB: {("cachehits", ()): 2.0}}, {})
    view.record(11.0, HaWatch(), {}, {})
    assert view.databases == {}
    assert "amr_cache_hits_total" not in view.exposition()


def test_the_scrape_token_is_made_private_once(tmp_path: Path) -> None:
    path = tmp_path / "monitor" / "prometheus.token"
    token = read_scrape_token(path)
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert read_scrape_token(path) == token
