"""Activity log entries for tests: one plausible entry, changed where a test needs it."""

from __future__ import annotations

import dataclasses

from amr.model.activity import ActivityEvent, ActivityStatus

SAMPLE_RESOURCE = (
    "/subscriptions/sub/resourceGroups/RG/providers/Microsoft.Cache/redisEnterprise/c/databases/default"
)


def sample_event(**changes: object) -> ActivityEvent:
    """The Started entry of a listKeys call by ``App-1``, with ``changes`` applied."""
    event = ActivityEvent(
        event_data_id="e1",
        correlation_id="Corr-1",
        operation_id="Corr-1",
        operation_name="Microsoft.Cache/redisEnterprise/databases/listKeys/action",
        status=ActivityStatus.STARTED,
        event_timestamp="2026-01-01T00:00:00.000000Z",
        subscription_id="sub",
        tenant_id="t",
        resource_group="RG",
        resource_id=SAMPLE_RESOURCE,
        caller="App-1",
        http_method="POST",
        client_ip="127.0.0.1",
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]
