"""``amr monitor activity-log list`` against the real API app: az's flags become Azure's $filter,
entries come newest first up to --max-events across pages, -o table is one readable line each, and
bad flags are usage errors."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from amr.cli.commands_activity_log import build_filter
from amr.cli.main import build_parser
from amr.testing.api import InProcessApi

from .conftest import BASE, PRINCIPAL, Runner, create_cluster

DAY = ("--start-time", "2025-07-01T00:00:00Z", "--end-time", "2025-07-02T00:00:00Z")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["monitor", "activity-log", "list", *argv])


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        ((), "eventTimestamp ge '2026-12-06T06:00:00.000000Z' and eventTimestamp le '2026-12-06T12:00:00.000000Z'"),
        (("--offset", "1d"), "eventTimestamp ge '2026-12-05T12:00:00.000000Z' and eventTimestamp le '2026-12-06T12:00:00.000000Z'"),
        (("--start-time", "2026-12-01T00:00:00Z"),
         "eventTimestamp ge '2026-12-01T00:00:00.000000Z' and eventTimestamp le '2026-12-01T06:00:00.000000Z'"),
        (("--end-time", "2026-12-01T00:00:00+01:00", "--offset", "30m"),
         "eventTimestamp ge '2026-11-30T22:30:00.000000Z' and eventTimestamp le '2026-11-30T23:00:00.000000Z'"),
        (("-g", "rg1", "--caller", "o'brien", "--status", "Failed", "--correlation-id", "c1",
          "--resource-id", "/subscriptions/s/resourceGroups/rg1", "--namespace", "Microsoft.Cache"),
         "eventTimestamp ge '2026-12-06T06:00:00.000000Z' and eventTimestamp le '2026-12-06T12:00:00.000000Z'"
         " and resourceGroupName eq 'rg1' and resourceUri eq '/subscriptions/s/resourceGroups/rg1'"
         " and resourceProvider eq 'Microsoft.Cache' and correlationId eq 'c1' and caller eq 'o''brien'"
         " and status eq 'Failed'"),
        (("--filters", "eventTimestamp ge '2020-01-01'", "-g", "ignored"), "eventTimestamp ge '2020-01-01'"),
    ],
)  # fmt: skip
def test_flags_build_azures_filter(argv: tuple[str, ...], wanted: str) -> None:
    assert build_filter(_args(*argv), NOW) == wanted


def test_list_json_table_select_and_max_events(run: Runner, app: InProcessApi) -> None:
    assert create_cluster(run).code == 0
    keys = run("redisenterprise", "database", "list-keys", *BASE).json()
    r = run("monitor", "activity-log", "list", *DAY, "--max-events", "500")
    assert r.code == 0, r.err
    entries = r.json()
    names = [e["operationName"]["value"] for e in entries]
    assert names[:2] == ["Microsoft.Cache/redisEnterprise/databases/listKeys/action"] * 2
    assert [e["status"]["value"] for e in entries[:2]] == ["Succeeded", "Started"]
    assert {e["caller"] for e in entries} == {PRINCIPAL.client_id}
    assert keys["primaryKey"] not in r.out and PRINCIPAL.client_secret not in r.out
    # Fewer than there are: the newest ones.
    r = run(
        "monitor",
        "activity-log",
        "list",
        *DAY,
        "--max-events",
        "3",
        "--select",
        "status",
        "operationName,caller",
    )
    assert [set(e) for e in r.json()] == [{"status", "operationName", "caller"}] * 3
    r = run("monitor", "activity-log", "list", *DAY, "-g", "rg1", "--status", "Accepted", "-o", "table")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == [
        "Time",
        "Status",
        "Operation",
        "Caller",
        "ResourceGroup",
        "Resource",
        "CorrelationId",
    ]
    # Header, dashes, and the Accepted entries of the cache's and the database's creates.
    assert len(lines) == 4, r.out
    assert (
        "Microsoft.Cache/redisEnterprise/databases/write" in r.out
        and "redisEnterprise/cache1/databases/default" in r.out
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--start-time", "yesterday"), "--start-time: 'yesterday' is not an ISO 8601 time"),
        (("--offset", "6x"), "--offset: '6x' is not a time offset"),
        (("--max-events", "0"), "--max-events: expected a whole number from 1"),
    ],
)
def test_bad_flags_are_usage_errors(run: Runner, argv: tuple[str, ...], says: str) -> None:
    r = run("monitor", "activity-log", "list", *argv)
    assert r.code == 2 and says in r.err


def test_a_filter_the_api_refuses_is_its_error(run: Runner) -> None:
    r = run("monitor", "activity-log", "list", "--filters", "eventTimestamp ge 'soon'")
    assert r.code == 1 and r.err.startswith("ERROR: (BadRequest) The eventTimestamp value 'soon'")


def test_defaults_cover_the_last_six_hours() -> None:
    args = _args()
    assert args.offset == timedelta(hours=6) and args.max_events == 50
