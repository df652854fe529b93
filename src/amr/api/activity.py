"""Recording management writes and actions in the activity log, at the API's edge.

The app calls ``start_activity`` once a request is authenticated and routed, and ``finish_activity``
with the answer it gives. What is recorded is the caller (from the token's claims), the operation,
the resource, the correlation id, the method and the client's address: never a header value other
than the correlation and client request ids, never a body, never a key or a token.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping

from amr.api.context import Request, Services
from amr.errors import AmrError, ArmError
from amr.logic.arm.activity import (
    choose_caller,
    choose_operation_name,
    choose_resource_id,
    plan_kept_claims,
    plan_operation_end,
    plan_request_outcome,
    render_event_time,
)
from amr.model.activity import ActivityEvent, ActivityStatus
from amr.model.enums import OperationStatus
from amr.model.resources import Operation, OperationError

log = logging.getLogger(__name__)

CORRELATION_HEADER = "x-ms-correlation-request-id"
# A caller's correlation id is kept as given when it looks like one (a GUID or similar token);
# anything else (too long, spaces, control characters) gets one of amr's instead.
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def choose_correlation_id(headers: Mapping[str, str]) -> str:
    """The request's ``x-ms-correlation-request-id`` if it gave a usable one, else a new GUID."""
    given = headers.get(CORRELATION_HEADER, "").strip()
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


def start_activity(
    req: Request, pattern: tuple[str, ...], claims: Mapping[str, object], correlation_id: str
) -> ActivityEvent | None:
    """Record the Started entry of a write or action (None, and nothing recorded, for a read)."""
    name = choose_operation_name(req.method, pattern)
    if name is None:
        return None
    s = req.services
    client_request_id = req.headers.get("x-ms-client-request-id", "")
    event = ActivityEvent(
        event_data_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        operation_id=correlation_id,
        operation_name=name,
        status=ActivityStatus.STARTED,
        event_timestamp=render_event_time(s.now()),
        subscription_id=req.params.get("subscriptionId", s.subscription_id),
        tenant_id=s.tenant_id,
        resource_group=req.params.get("resourceGroupName", ""),
        resource_id=choose_resource_id(req.path, name),
        caller=choose_caller(claims),
        http_method=req.method,
        client_ip=req.source,
        client_request_id=client_request_id if _CORRELATION.match(client_request_id) else "",
        uri=f"{req.base_url}{req.path}",
        claims=plan_kept_claims(claims),
    )
    s.store.add_activity(event)
    return event


def finish_activity(
    services: Services,
    started: ActivityEvent | None,
    req: Request | None,
    status: int,
    error: ArmError | None,
) -> None:
    """Record how the API answered a recorded request: Failed with the ARM error, Accepted when a
    long-running operation goes on (its end is recorded when it ends), else Succeeded. A failure to
    write is logged, not answered: the request itself already happened."""
    if started is None:
        return
    operation = req.operation if req is not None and error is None else None
    outcome = plan_request_outcome(
        started,
        status,
        OperationError(error.code, error.message) if error is not None else None,
        operation.id if operation is not None else None,
        services.now(),
    )
    try:
        services.store.add_activity(outcome)
        if operation is None:
            return
        # The store writes an operation's end entry when the operation ends; one that ended before
        # its Accepted entry was written (a fast one) gets it here instead.
        current = services.store.get(Operation, operation.id)
        if current is not None and current.status.done:
            succeeded = current.status is OperationStatus.SUCCEEDED
            services.store.add_activity(
                plan_operation_end(outcome, succeeded, current.error, current.end_time or "")
            )
    except AmrError as e:
        log.error("cannot record the activity log entry of %s: %s", started.operation_name, e)
