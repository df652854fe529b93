"""``amr monitor metrics list`` and ``list-definitions`` against the real API app over a metric store
written here: az's flags become the metrics query, ``-o table`` is one readable line per minute with
an empty cell where there was no data, and bad input is the API's message, not a traceback."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amr.cli.commands_metrics import build_query
from amr.cli.main import build_parser
from amr.monitor.main import STORE_FILE_NAME
from amr.monitor.store import MetricStore
from amr.testing.api import InProcessApi

from .conftest import SUB, Runner, create_cluster

CACHE = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Cache/redisEnterprise/cache1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = ("--start-time", "2026-01-01T00:00:00Z", "--end-time", "2026-01-01T00:05:00Z")


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["monitor", "metrics", "list", "--resource", CACHE, *argv])


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (("--metrics", "cachehits"),
         {"metricnames": "cachehits", "timespan": "2025-12-31T23:00:00Z/2026-01-01T00:00:00Z", "interval": "PT1M"}),
        (("--metrics", "cachehits", "getcommands,setcommands", "--interval", "1h", "--offset", "1d",
          "--aggregation", "Total", "Maximum"),
         {"metricnames": "cachehits,getcommands,setcommands", "timespan": "2025-12-31T00:00:00Z/2026-01-01T00:00:00Z",
          "interval": "PT1H", "aggregation": "Total,Maximum"}),
        (("--metrics", "cacheRead", "--start-time", "2025-12-01T00:00:00Z", "--interval", "1d", "--dimension",
          "InstanceId", "--top", "3", "--orderby", "Maximum desc", "--metadata"),
         {"metricnames": "cacheRead", "timespan": "2025-12-01T00:00:00Z/2025-12-01T01:00:00Z", "interval": "P1D",
          "$filter": "InstanceId eq '*'", "top": "3", "orderby": "Maximum desc", "resultType": "Metadata"}),
        (("--metrics", "cacheRead", "--filter", "InstanceId eq 'a'", "--interval", "FULL"),
         {"metricnames": "cacheRead", "timespan": "2025-12-31T23:00:00Z/2026-01-01T00:00:00Z", "interval": "FULL",
          "$filter": "InstanceId eq 'a'"}),
    ],
)  # fmt: skip
def test_flags_build_the_query(argv: tuple[str, ...], wanted: dict[str, str]) -> None:
    assert build_query(_args(*argv), T0) == wanted


@pytest.fixture
def filled(run: Runner, app: InProcessApi, tmp_path: Path) -> Runner:
    assert create_cluster(run).code == 0
    store = MetricStore(tmp_path / "api" / "monitor" / STORE_FILE_NAME)
    start = int(T0.timestamp())
    for t in (start + 10, start + 20, start + 130):  # minutes 0 and 2; 1, 3 and 4 without data
        store.write(t, {CACHE.lower(): {("cachehits", ()): 3, ("connectedclients", ("gateway-0",)): 1}})
    store.close()
    return run


def test_list_json_and_table(filled: Runner) -> None:
    r = filled("monitor", "metrics", "list", "--resource", CACHE, "--metrics", "cachehits", *SPAN)
    assert r.code == 0, r.err
    data = r.json()["value"][0]["timeseries"][0]["data"]
    assert [d.get("total") for d in data] == [6, None, 3, None, None]
    r = filled("monitor", "metrics", "list", "--resource", "cache1", "-g", "rg1", "--metrics", "cachehits",
               "--aggregation", "Total", "Count", *SPAN, "-o", "table")  # fmt: skip
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["Timestamp", "Name", "Count", "Total"]
    assert lines[2].split() == ["2026-01-01", "00:00:00", "cachehits", "2", "6"]
    assert lines[3].split() == ["2026-01-01", "00:01:00", "cachehits"]  # no data: empty cells


def test_split_table_names_the_instance(filled: Runner) -> None:
    r = filled("monitor", "metrics", "list", "--resource", CACHE, "--metrics", "connectedclients",
               "--dimension", "InstanceId", *SPAN, "-o", "table")  # fmt: skip
    assert r.code == 0, r.err
    assert "InstanceId=gateway-0" in r.out.splitlines()[2]


def test_definitions_table(filled: Runner) -> None:
    r = filled("monitor", "metrics", "list-definitions", "--resource", CACHE, "-o", "table")
    assert r.code == 0, r.err
    assert "connectedclients" in r.out and "InstanceId" in r.out and "Used Memory Percentage" in r.out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--metrics", "hits"), "Unknown metric name(s) 'hits'"),
        (("--metrics", "cachehits", "--interval", "2m"), "use one of PT1M"),
        (("--metrics", "cachehits", "--filter", "InstanceId"), "does not parse"),
    ],
)
def test_bad_input_is_the_apis_message(filled: Runner, argv: tuple[str, ...], says: str) -> None:
    r = filled("monitor", "metrics", "list", "--resource", CACHE, *argv)
    assert r.code != 0 and says in r.err


def test_a_name_without_group_is_a_clear_error(filled: Runner) -> None:
    r = filled("monitor", "metrics", "list", "--resource", "cache1", "--metrics", "cachehits")
    assert r.code != 0 and "-g <resource group>" in r.err
