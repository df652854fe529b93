"""The Prometheus exposition's pure decisions (amr.logic.metrics.prometheus): names, types, units and
labels of every family, counters summed from interval increases, the text format's escaping, and
which scrape requests get the exposition."""

from __future__ import annotations

import re

import pytest

from amr.logic.metrics.azure import METRICS
from amr.logic.metrics.gateway import GATEWAY_METRICS
from amr.logic.metrics.prometheus import (
    COUNTER_METRICS,
    FAMILIES,
    DatabaseMetrics,
    NodePlace,
    accumulate_totals,
    choose_scrape_answer,
    parse_database_labels,
    render_exposition,
    render_value,
)

DB = "/subscriptions/sub-1/resourceGroups/rg-A/providers/Microsoft.Cache/redisEnterprise/Cache1/databases/default"
BASE = 'subscription="sub-1",resource_group="rg-A",cache="Cache1",database="default"'
NODES = {"d1-0-0": NodePlace(0, True), "d1-0-1": NodePlace(0, False), "d1-1-0": NodePlace(1, None)}
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def test_every_metric_of_the_store_has_a_family() -> None:
    assert set(FAMILIES) == {m.name for m in METRICS} | {m.name for m in GATEWAY_METRICS}


@pytest.mark.parametrize("metric", sorted(FAMILIES))
def test_families_follow_prometheus_naming(metric: str) -> None:
    family = FAMILIES[metric]
    assert NAME.match(family.name) and family.name.startswith("amr_")
    # Counters and only counters end in _total; Azure's Total aggregation is a counter.
    assert family.name.endswith("_total") == (family.kind == "counter") == (metric in COUNTER_METRICS)
    azure = {m.name: m for m in (*METRICS, *GATEWAY_METRICS)}[metric]
    assert (family.kind == "counter") == (azure.aggregation == "Total" or metric == "errors")
    # Base units: percentages become ratios, microseconds seconds.
    assert (azure.unit == "Percent") == family.name.endswith("_ratio") == (family.divisor == 100)
    assert "percent" not in family.name and "micro" not in family.name


@pytest.mark.parametrize(
    ("totals", "values", "expected"),
    [
        ({}, {("cachehits", ()): 3.0, ("totalkeys", ()): 9.0}, {("cachehits", ()): 3.0}),
        ({("cachehits", ()): 3.0}, {("cachehits", ()): 2.0}, {("cachehits", ()): 5.0}),
        # A tick without the series (no node answered) leaves its total alone.
        ({("cachehits", ()): 3.0}, {}, {("cachehits", ()): 3.0}),
        (
            {},
            {("errors", ("d1-0-1", "Failover")): 1.0, ("gatewayBytesIn", ("gateway-0",)): 10.0},
            {("errors", ("d1-0-1", "Failover")): 1.0, ("gatewayBytesIn", ("gateway-0",)): 10.0},
        ),
    ],
)
def test_totals_add_up_counter_increases_only(totals: dict, values: dict, expected: dict) -> None:
    assert accumulate_totals(totals, values) == expected


@pytest.mark.parametrize(
    ("database_id", "expected"),
    [
        (DB, {"subscription": "sub-1", "resource_group": "rg-A", "cache": "Cache1", "database": "default"}),
        (
            DB.lower(),
            {"subscription": "sub-1", "resource_group": "rg-a", "cache": "cache1", "database": "default"},
        ),
        ("/subscriptions/s", {"subscription": "s", "resource_group": "", "cache": "", "database": ""}),
    ],
)
def test_database_labels_come_from_the_resource_id(database_id: str, expected: dict) -> None:
    assert parse_database_labels(database_id) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (0.125, "0.125"),
        (1.2e-05, "1.2e-05"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (-2.0, "-2"),
    ],
)
def test_values_render_as_the_text_format_reads_them(value: float, text: str) -> None:
    assert render_value(value) == text


@pytest.mark.parametrize(
    ("latest", "totals", "expected"),
    [
        # A database counter: from the totals, with the database's labels.
        ({("cachehits", ()): 2.0}, {("cachehits", ()): 7.0}, [f"amr_cache_hits_total{{{BASE}}} 7"]),
        # A gauge in base units: percent to a ratio.
        ({("usedmemorypercentage", ()): 12.5}, {}, [f"amr_used_memory_ratio{{{BASE}}} 0.125"]),
        # A node's gauge: node, shard and role; microseconds to seconds.
        (
            {("cacheLatency", ("d1-0-1",)): 20.0},
            {},
            [f'amr_node_latency_seconds{{{BASE},node="d1-0-1",shard="0",role="replica"}} 2e-05'],
        ),
        # A node that did not answer has no gauge (never a stale or made-up role).
        ({("percentProcessorTime", ("d1-1-0",)): 5.0}, {}, []),
        # A node's counter keeps no role (a failover must not split it) but has its error type.
        (
            {},
            {("errors", ("d1-0-0", "Failover")): 1.0},
            [f'amr_errors_total{{{BASE},node="d1-0-0",shard="0",error_type="Failover"}} 1'],
        ),
        # The gateway's series are per worker.
        (
            {("connectedclients", ("gateway-1",)): 4.0},
            {("gatewayAuthFailures", ("gateway-1",)): 2.0},
            [
                f'amr_gateway_auth_failures_total{{{BASE},gateway_worker="1"}} 2',
                f'amr_connected_clients{{{BASE},gateway_worker="1"}} 4',
            ],
        ),
        # A counter in the latest values only (no total yet) is not shown; a gauge in the totals neither.
        ({("setcommands", ()): 1.0}, {("totalkeys", ()): 1.0}, []),
    ],
)
def test_series_get_their_labels_and_units(latest: dict, totals: dict, expected: list[str]) -> None:
    text = render_exposition([DatabaseMetrics(DB, latest, totals, NODES)], None)
    samples = [line for line in text.splitlines() if not line.startswith(("#", "amr_node_up"))]
    assert samples == expected


def test_every_family_has_help_and_type_once_before_its_samples() -> None:
    latest = {("totalkeys", ()): 1.0, ("connectedclients", ("gateway-0",)): 1.0}
    other = DB.replace("Cache1", "Cache2")
    text = render_exposition(
        [DatabaseMetrics(DB, latest, {}, NODES), DatabaseMetrics(other, latest, {}, {})], 1700000000.5
    )
    lines = text.splitlines()
    assert text.endswith("\n")
    assert lines[:2] == [
        "# HELP amr_connected_clients " + FAMILIES["connectedclients"].help,
        "# TYPE amr_connected_clients gauge",
    ]
    for name in (
        "amr_connected_clients",
        "amr_keys",
        "amr_node_up",
        "amr_monitor_last_sample_timestamp_seconds",
    ):
        assert sum(1 for line in lines if line.startswith(f"# TYPE {name} ")) == 1
        first = next(i for i, line in enumerate(lines) if line.startswith(name))
        assert lines[first - 1].startswith(f"# TYPE {name} ")
        # A family's samples are together.
        idx = [i for i, line in enumerate(lines) if line.split("{")[0].split(" ")[0] == name]
        assert idx == list(range(idx[0], idx[0] + len(idx)))
    assert f'amr_node_up{{{BASE},node="d1-1-0",shard="1"}} 0' in lines
    assert "amr_monitor_last_sample_timestamp_seconds 1700000000.5" in lines


def test_label_values_and_help_are_escaped() -> None:
    weird = DB.replace("Cache1", 'a"b\\c\nd')
    text = render_exposition([DatabaseMetrics(weird, {("totalkeys", ()): 1.0})], None)
    assert 'cache="a\\"b\\\\c\\nd"' in text


def test_nothing_to_show_is_an_empty_body() -> None:
    assert render_exposition([], None) == ""


TOKEN = "s3cret-token"


@pytest.mark.parametrize(
    ("method", "path", "authorization", "status"),
    [
        ("GET", "/metrics", f"Bearer {TOKEN}", 200),
        ("HEAD", "/metrics", f"bearer {TOKEN}", 200),
        ("GET", "/metrics", "", 401),
        ("GET", "/metrics", "Bearer wrong", 401),
        ("GET", "/metrics", f"Basic {TOKEN}", 401),
        ("GET", "/metrics", f"Bearer {TOKEN}x", 401),
        ("GET", "/metrics", "Bearer ", 401),
        ("GET", "/", f"Bearer {TOKEN}", 404),
        ("POST", "/metrics", f"Bearer {TOKEN}", 405),
    ],
)
def test_only_the_token_gets_the_exposition(method: str, path: str, authorization: str, status: int) -> None:
    answer = choose_scrape_answer(method, path, authorization, TOKEN)
    assert answer.status == status
    assert answer.exposition == (status == 200)
    if status == 401:
        assert ("www-authenticate", 'Bearer realm="amr"') in answer.headers
        assert TOKEN not in answer.message


def test_an_empty_token_file_never_matches_an_empty_bearer() -> None:
    assert choose_scrape_answer("GET", "/metrics", "Bearer ", "").status == 401
