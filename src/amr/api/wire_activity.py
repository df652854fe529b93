"""The activity log's wire shape: Azure Monitor's EventData (api-version 2015-04-01), as
azure-mgmt-monitor's ``EventData`` model and the REST spec's examples have it."""

from __future__ import annotations

import http
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from amr.logic.arm.activity import choose_resource_provider, choose_resource_type
from amr.model.activity import ActivityEvent, ActivityStatus

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _text(value: str, localized: str | None = None) -> dict[str, str]:
    return {"value": value, "localizedValue": localized or value}


def render_status_code(status: int) -> str:
    """An HTTP status as Azure's events name it (.NET's HttpStatusCode: OK, Created, NoContent ...)."""
    try:
        name = http.HTTPStatus(status).name
    except ValueError:
        return str(status)
    return "OK" if name == "OK" else "".join(word.capitalize() for word in name.split("_"))


def _ticks(stamp: str) -> int:
    """The .NET ticks (100 ns since 0001-01-01) ARM puts in an event's id."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - _EPOCH) // timedelta(microseconds=1) * 10


def render_activity_event(event: ActivityEvent, select: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One entry as EventData; with ``select``, only those properties (Azure's ``$select``)."""
    properties: dict[str, str] = {"eventCategory": "Administrative", "entity": event.resource_id,
                                  "message": event.operation_name}  # fmt: skip
    if event.http_status:
        properties["statusCode"] = render_status_code(event.http_status)
    if event.error is not None:
        properties["statusMessage"] = json.dumps(
            {"error": {"code": event.error.code, "message": event.error.message}}
        )
    started = event.status is ActivityStatus.STARTED
    body: dict[str, Any] = {
        "authorization": {"action": event.operation_name, "scope": event.resource_id},
        "caller": event.caller,
        "category": _text("Administrative"),
        "claims": dict(event.claims),
        "correlationId": event.correlation_id,
        "description": "",
        "eventDataId": event.event_data_id,
        "eventName": _text("BeginRequest", "Begin request")
        if started
        else _text("EndRequest", "End request"),
        "eventTimestamp": event.event_timestamp,
        "httpRequest": {
            "clientRequestId": event.client_request_id,
            "clientIpAddress": event.client_ip,
            "method": event.http_method,
            "uri": event.uri,
        },
        "id": f"{event.resource_id}/events/{event.event_data_id}/ticks/{_ticks(event.event_timestamp)}",
        "level": "Error" if event.status is ActivityStatus.FAILED else "Informational",
        "operationId": event.operation_id,
        "operationName": _text(event.operation_name),
        "properties": properties,
        "resourceGroupName": event.resource_group,
        "resourceId": event.resource_id,
        "resourceProviderName": _text(choose_resource_provider(event.operation_name)),
        "resourceType": _text(choose_resource_type(event.operation_name)),
        "status": _text(event.status.value),
        "submissionTimestamp": event.event_timestamp,
        "subscriptionId": event.subscription_id,
        "tenantId": event.tenant_id,
    }
    if event.http_status:
        code = render_status_code(event.http_status)
        body["subStatus"] = _text(code, f"{code} (HTTP Status Code: {event.http_status})")
    if select is None:
        return body
    return {name: body[name] for name in select if name in body}
