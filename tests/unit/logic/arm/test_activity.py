"""Activity log decisions: which requests are recorded under which of Azure's operation names, the
resource they acted on, who called, and the entries of a request's answer and of its long-running
operation's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from amr.logic.arm.activity import (
    choose_caller,
    choose_operation_name,
    choose_resource_id,
    choose_resource_provider,
    choose_resource_type,
    plan_kept_claims,
    plan_operation_end,
    plan_request_outcome,
    render_event_time,
)
from amr.model.activity import ActivityStatus
from amr.model.resources import OperationError
from amr.testing.activity import sample_event

_RG = "subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
_C = "subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Cache/redisEnterprise/{clusterName}"
_D = _C + "/databases/{databaseName}"


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("PUT", _RG, "Microsoft.Resources/subscriptions/resourceGroups/write"),
        ("DELETE", _RG, "Microsoft.Resources/subscriptions/resourceGroups/delete"),
        ("PUT", _C, "Microsoft.Cache/redisEnterprise/write"),
        ("PATCH", _C, "Microsoft.Cache/redisEnterprise/write"),
        ("DELETE", _C, "Microsoft.Cache/redisEnterprise/delete"),
        ("POST", _C + "/listSkusForScaling", "Microsoft.Cache/redisEnterprise/listSkusForScaling/action"),
        ("PUT", _C + "/firewallRules/{ruleName}", "Microsoft.Cache/redisEnterprise/firewallRules/write"),
        ("DELETE", _C + "/firewallRules/{ruleName}", "Microsoft.Cache/redisEnterprise/firewallRules/delete"),
        ("PUT", _D, "Microsoft.Cache/redisEnterprise/databases/write"),
        ("PATCH", _D, "Microsoft.Cache/redisEnterprise/databases/write"),
        ("DELETE", _D, "Microsoft.Cache/redisEnterprise/databases/delete"),
        ("POST", _D + "/listKeys", "Microsoft.Cache/redisEnterprise/databases/listKeys/action"),
        ("POST", _D + "/regenerateKey", "Microsoft.Cache/redisEnterprise/databases/regenerateKey/action"),
        ("POST", _D + "/flush", "Microsoft.Cache/redisEnterprise/databases/flush/action"),
        ("POST", _D + "/restart", "Microsoft.Cache/redisEnterprise/databases/restart/action"),
        ("POST", _D + "/upgradeDBRedisVersion",
         "Microsoft.Cache/redisEnterprise/databases/upgradeDBRedisVersion/action"),
        # Reads, and what is not a management write, are not recorded.
        ("GET", _D, None),
        ("HEAD", _RG, None),
        ("GET", _D + "/listKeys", None),
        ("POST", "{tenantId}/oauth2/v2.0/token", None),
        ("POST", _D, None),
        ("PUT", "subscriptions/{s}/providers/Microsoft.Cache/redisEnterprise", None),
        ("GET", "subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values", None),
    ],
)  # fmt: skip
def test_choose_operation_name(method: str, path: str, name: str | None) -> None:
    assert choose_operation_name(method, tuple(path.split("/"))) == name


@pytest.mark.parametrize(
    ("path", "name", "resource_id"),
    [
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c/databases/default/listKeys",
         "Microsoft.Cache/redisEnterprise/databases/listKeys/action",
         "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c/databases/default"),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c/",
         "Microsoft.Cache/redisEnterprise/write",
         "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c"),
        ("/subscriptions/s/resourcegroups/rg", "Microsoft.Resources/subscriptions/resourceGroups/delete",
         "/subscriptions/s/resourcegroups/rg"),
    ],
)  # fmt: skip
def test_choose_resource_id_drops_the_action_segment(path: str, name: str, resource_id: str) -> None:
    assert choose_resource_id(path, name) == resource_id


@pytest.mark.parametrize(
    ("name", "provider", "resource_type"),
    [
        ("Microsoft.Cache/redisEnterprise/databases/listKeys/action", "Microsoft.Cache",
         "Microsoft.Cache/redisEnterprise/databases"),
        ("Microsoft.Cache/redisEnterprise/write", "Microsoft.Cache", "Microsoft.Cache/redisEnterprise"),
        ("Microsoft.Resources/subscriptions/resourceGroups/delete", "Microsoft.Resources",
         "Microsoft.Resources/subscriptions/resourceGroups"),
    ],
)  # fmt: skip
def test_provider_and_type_of_an_operation(name: str, provider: str, resource_type: str) -> None:
    assert choose_resource_provider(name) == provider
    assert choose_resource_type(name) == resource_type


@pytest.mark.parametrize(
    ("claims", "caller"),
    [
        ({"appid": "app-1", "sub": "sub-1"}, "app-1"),
        ({"sub": "sub-1"}, "sub-1"),
        ({"upn": "admin@contoso.com", "appid": "app-1"}, "admin@contoso.com"),
        ({}, ""),
    ],
)
def test_choose_caller(claims: dict[str, object], caller: str) -> None:
    assert choose_caller(claims) == caller


def test_kept_claims_are_text_and_leave_out_the_rest() -> None:
    kept = plan_kept_claims({"appid": "a", "iat": 5, "jti": "x", "secret": "s", "tid": ""})
    assert kept == {"appid": "a", "iat": "5"}


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
        (datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:04:05.000000Z"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000000Z"),
    ],
)
def test_render_event_time_is_fixed_width_utc(moment: datetime, text: str) -> None:
    assert render_event_time(moment) == text


_STARTED = sample_event(
    correlation_id="corr",
    operation_id="corr",
    operation_name="Microsoft.Cache/redisEnterprise/write",
    resource_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c",
    caller="app",
)
_LATER = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("http_status", "error", "operation_id", "status", "event_id", "op_id"),
    [
        (200, None, None, ActivityStatus.SUCCEEDED, "e1-succeeded", "corr"),
        (201, None, "op-1", ActivityStatus.ACCEPTED, "e1-accepted", "op-1"),
        (202, None, "op-1", ActivityStatus.ACCEPTED, "e1-accepted", "op-1"),
        (
            400,
            OperationError("InvalidParameter", "bad sku"),
            None,
            ActivityStatus.FAILED,
            "e1-failed",
            "corr",
        ),
        (500, None, None, ActivityStatus.FAILED, "e1-failed", "corr"),
    ],
)
def test_plan_request_outcome(
    http_status: int,
    error: OperationError | None,
    operation_id: str | None,
    status: ActivityStatus,
    event_id: str,
    op_id: str,
) -> None:
    outcome = plan_request_outcome(_STARTED, http_status, error, operation_id, _LATER)
    assert (outcome.status, outcome.event_data_id, outcome.operation_id) == (status, event_id, op_id)
    assert outcome.http_status == http_status and outcome.error == error
    assert outcome.event_timestamp == "2026-01-01T00:00:01.000000Z"
    assert (outcome.correlation_id, outcome.caller, outcome.resource_id) == (
        "corr",
        "app",
        _STARTED.resource_id,
    )


@pytest.mark.parametrize(
    ("succeeded", "error", "status", "kept_error"),
    [
        (True, None, ActivityStatus.SUCCEEDED, None),
        (False, OperationError("NodeFailed", "node d1 did not start"), ActivityStatus.FAILED,
         OperationError("NodeFailed", "node d1 did not start")),
        (True, OperationError("x", "y"), ActivityStatus.SUCCEEDED, None),
    ],
)  # fmt: skip
def test_plan_operation_end_keeps_the_correlation_of_the_request(
    succeeded: bool, error: OperationError | None, status: ActivityStatus, kept_error: OperationError | None
) -> None:
    accepted = plan_request_outcome(_STARTED, 201, None, "op-7", _LATER)
    end = plan_operation_end(accepted, succeeded, error, "2026-01-01T00:05:00+00:00")
    assert end.status is status and end.error == kept_error
    assert end.event_data_id == "op-7-end" and end.operation_id == "op-7"
    assert end.correlation_id == "corr" and end.caller == "app"
    assert end.event_timestamp == "2026-01-01T00:05:00.000000Z" and end.http_status == 0
