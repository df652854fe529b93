"""The activity log query's $filter, $select and $skipToken: what Azure's documented forms and az's
forms ask for, and a clear 400 for anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amr.errors import ArmError
from amr.logic.arm.activity_filter import (
    SELECTABLE,
    parse_activity_filter,
    parse_activity_select,
    parse_event_time,
    parse_offset,
    parse_skip_token,
    render_activity_filter,
    render_skip_token,
)
from amr.model.activity import ActivityQuery

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
T1, T2 = "2026-12-01T00:00:00.000000Z", "2026-12-02T00:00:00.000000Z"
RANGE = "eventTimestamp ge '2026-12-01T00:00:00Z' and eventTimestamp le '2026-12-02T00:00:00Z'"
RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c"


@pytest.mark.parametrize(
    ("text", "query"),
    [
        (RANGE, ActivityQuery(T1, T2)),
        # Azure's documented patterns.
        (RANGE + " and resourceGroupName eq 'MSSupportGroup'", ActivityQuery(T1, T2, resource_group="MSSupportGroup")),
        (RANGE + f" and resourceUri eq '{RID}'", ActivityQuery(T1, T2, resource_id=RID)),
        (RANGE + " and resourceProvider eq 'Microsoft.Cache'", ActivityQuery(T1, T2, resource_provider="Microsoft.Cache")),
        (RANGE + " and correlationId eq 'c-1'", ActivityQuery(T1, T2, correlation_id="c-1")),
        (RANGE + " and eventChannels eq 'Admin, Operation'", ActivityQuery(T1, T2)),
        # az's: bare timestamps without a zone (UTC), resourceId, caller and status.
        ("eventTimestamp ge 2026-12-01T00:00:00 and eventTimestamp le 2026-12-02T00:00:00.000000"
         f" and resourceId eq '{RID}' and caller eq 'app-1' and status eq 'Succeeded'",
         ActivityQuery(T1, T2, resource_id=RID, caller="app-1", status="Succeeded")),
        # Case of names and operators does not matter; 7 fractional digits and offsets are read.
        ("EVENTTIMESTAMP GE '2026-12-01T02:00:00.0000000+02:00' AND ResourceGroupName EQ 'rg'",
         ActivityQuery(T1, "2026-12-06T12:00:00.000000Z", resource_group="rg")),
        # A quote inside a value is doubled.
        (RANGE + " and caller eq 'o''brien'", ActivityQuery(T1, T2, caller="o'brien")),
        # The end defaults to now.
        ("eventTimestamp ge '2026-12-01T00:00:00Z'", ActivityQuery(T1, "2026-12-06T12:00:00.000000Z")),
    ],
)  # fmt: skip
def test_parse_activity_filter(text: str, query: ActivityQuery) -> None:
    assert parse_activity_filter(text, NOW) == query


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "required"),
        ("  ", "required"),
        ("eventTimestamp le '2026-12-02T00:00:00Z'", "start time"),
        ("resourceGroupName eq 'rg'", "start time"),
        ("eventTimestamp ge 'yesterday'", "not an ISO 8601 time"),
        (RANGE + " or resourceGroupName eq 'rg'", "'and' only"),
        (RANGE + " and resourceGroupName ne 'rg'", "'eq' only"),
        (RANGE + " and operationName eq 'x'", "'operationName' is not one"),
        (RANGE + " and resourceGroupName eq", "incomplete condition"),
        (RANGE + " and resourceGroupName eq 'rg", "unterminated quote"),
        (RANGE + " and resourceGroupName eq ''", "empty value"),
        (RANGE + " and resourceGroupName eq 'a' and resourceGroupName eq 'b'", "twice"),
        (RANGE + " and eventTimestamp ge '2026-12-01T00:00:00Z'", "twice"),
        ("eventTimestamp gt '2026-12-01T00:00:00Z'", "'ge' (start) or 'le' (end)"),
        (
            "eventTimestamp ge '2026-12-03T00:00:00Z' and eventTimestamp le '2026-12-02T00:00:00Z'",
            "after its end",
        ),
        ("(eventTimestamp ge '2026-12-01T00:00:00Z')", "not one the activity log has"),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_to_fix(text: str | None, says: str) -> None:
    with pytest.raises(ArmError) as e:
        parse_activity_filter(text, NOW)
    assert e.value.status == 400 and e.value.code == "BadRequest"
    assert says in e.value.message


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (None, None),
        ("", None),
        ("eventName,id,resourceGroupName,operationName,status,eventTimestamp,correlationId",
         ("eventName", "id", "resourceGroupName", "operationName", "status", "eventTimestamp", "correlationId")),
        ("caller , STATUS , caller", ("caller", "status")),  # az joins with ' , '
    ],
)  # fmt: skip
def test_parse_activity_select(text: str | None, names: tuple[str, ...] | None) -> None:
    assert parse_activity_select(text) == names


def test_a_bad_select_names_the_properties_there_are() -> None:
    with pytest.raises(ArmError) as e:
        parse_activity_select("caller,password")
    assert e.value.status == 400 and "'password'" in e.value.message and "eventDataId" in e.value.message
    assert "caller" in SELECTABLE


def test_skip_token_round_trip_and_refusal() -> None:
    token = render_skip_token(T1, 42)
    assert parse_skip_token(token) == (T1, 42)
    for bad in (
        "",
        "%%%",
        render_skip_token("yesterday", 1),
        "bm90aGluZw",
        "MjAyNi0xMi0wMVQwMDowMDowMC4wMDAwMDBafHg",
    ):
        with pytest.raises(ArmError) as e:
            parse_skip_token(bad)
        assert e.value.status == 400 and "nextLink" in e.value.message


def test_parse_event_time_takes_utc_for_a_time_without_zone() -> None:
    assert parse_event_time("2026-12-01T00:00:00") == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset"),
    [("6h", timedelta(hours=6)), ("1d", timedelta(days=1)), ("1d12h", timedelta(hours=36)),
     ("30m", timedelta(minutes=30)), ("2D3H4M", timedelta(days=2, hours=3, minutes=4))],
)  # fmt: skip
def test_parse_offset(text: str, offset: timedelta) -> None:
    assert parse_offset(text) == offset


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "1h1d", "-1h"])
def test_parse_offset_refuses_what_is_not_an_offset(text: str) -> None:
    with pytest.raises(ValueError, match="not a time offset"):
        parse_offset(text)


def test_render_activity_filter_reads_back_as_the_same_query() -> None:
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    text = render_activity_filter(
        start, end, (("resourceGroupName", "rg"), ("caller", "o'b"), ("status", None))
    )
    assert text == (
        "eventTimestamp ge '2026-12-01T00:00:00.000000Z' and eventTimestamp le '2026-12-02T00:00:00.000000Z'"
        " and resourceGroupName eq 'rg' and caller eq 'o''b'"
    )
    assert parse_activity_filter(text, NOW) == ActivityQuery(T1, T2, resource_group="rg", caller="o'b")
