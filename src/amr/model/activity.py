"""The activity log: who did what to which resource, when, and how it ended.

Every management write and action through the API (PUT, PATCH, DELETE, POST actions such as
listKeys) leaves entries here, as Azure's activity log does: one when the request starts, one when the
API answers (Succeeded, Failed, or Accepted for a long-running operation), and for a long-running
operation one more when it ends, all with the request's correlation id. Entries are our model; the
API renders them in Azure's EventData shape. No entry holds a secret: no key, no token, no body.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from amr.model.resources import OperationError


class ActivityStatus(enum.StrEnum):
    STARTED = "Started"
    ACCEPTED = "Accepted"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class ActivityEvent:
    """One entry of the activity log.

    ``event_timestamp`` is ISO 8601 UTC with microseconds and a ``Z`` (fixed width, so text order is
    time order). ``operation_id`` ties the entries of one request together (the long-running
    operation's id when there is one). ``claims`` are the caller's token claims that say who and
    which tenant, never the token itself.
    """

    event_data_id: str
    correlation_id: str
    operation_id: str
    operation_name: str
    status: ActivityStatus
    event_timestamp: str
    subscription_id: str
    tenant_id: str
    resource_group: str
    resource_id: str
    caller: str
    http_method: str
    client_ip: str
    client_request_id: str = ""
    uri: str = ""
    # The HTTP status the API answered with, for the entries written when it answered (0: none).
    http_status: int = 0
    # The ARM error a failed request or operation ended with, as the caller saw it.
    error: OperationError | None = None
    claims: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActivityQuery:
    """Which entries a reader wants: a time range (inclusive) and optional exact matches. Names and
    ids compare without regard to case, as ARM's do."""

    start: str
    end: str
    resource_group: str | None = None
    resource_id: str | None = None
    resource_provider: str | None = None
    correlation_id: str | None = None
    status: str | None = None
    caller: str | None = None
