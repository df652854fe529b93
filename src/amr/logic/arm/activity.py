"""Activity log decisions: which requests are recorded and under which operation name, and what the
entries of a request and of its long-running operation say.

Operation names are Azure's: ``{namespace}/{type}[/{child type}]/{write|delete}`` for a PUT, PATCH or
DELETE of a resource and ``.../{action}/action`` for a POST, as the resource provider's operations
list names them (``Microsoft.Cache/redisEnterprise/databases/listKeys/action``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime

from amr.model.activity import ActivityEvent, ActivityStatus
from amr.model.resources import OperationError

_WRITE_METHODS = {"PUT": "write", "PATCH": "write", "DELETE": "delete"}
# Resource groups are Microsoft.Resources' and live outside any providers/ segment.
_GROUPS = "Microsoft.Resources/subscriptions/resourceGroups"
# The claims that say who called and from which tenant and application; nothing else of a token
# is kept (a token's signature is what would make it usable, and it is never a claim).
_KEPT_CLAIMS = ("aud", "iss", "iat", "nbf", "exp", "sub", "appid", "tid", "oid", "name", "upn")


def render_event_time(moment: datetime) -> str:
    """The fixed-width ISO 8601 UTC form entries keep (``2026-12-06T08:15:47.123456Z``), whose text
    order is time order; a naive ``moment`` is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def choose_operation_name(method: str, pattern: tuple[str, ...]) -> str | None:
    """The operation name of a request to a route ``pattern`` (path segments, ``{name}`` for a
    parameter), or None when the request is not a management write or action (reads, HEAD, the token
    endpoint)."""
    method = method.upper()
    if method not in _WRITE_METHODS and method != "POST":
        return None
    lowered = [s.lower() for s in pattern]
    if not lowered or lowered[0] != "subscriptions":
        return None
    if "providers" not in lowered:
        # subscriptions/{id}/resourcegroups/{name}: the only write outside a provider.
        if len(lowered) == 4 and lowered[2] == "resourcegroups" and method in _WRITE_METHODS:
            return f"{_GROUPS}/{_WRITE_METHODS[method]}"
        return None
    rest = pattern[lowered.index("providers") + 1 :]
    if len(rest) < 2:
        return None
    namespace, typed = rest[0], rest[1:]
    types = [typed[i] for i in range(0, len(typed), 2)]
    names = [typed[i] for i in range(1, len(typed), 2)]
    if len(types) == len(names):
        if method == "POST":
            return None  # a POST to a resource itself is no action amr serves
        return "/".join((namespace, *types, _WRITE_METHODS[method]))
    if method != "POST" or len(types) < 2:
        return None  # a collection (list) or a write without a name
    return "/".join((namespace, *types[:-1], types[-1], "action"))


def choose_resource_id(path: str, operation_name: str) -> str:
    """The resource a request acted on: its path, less the action segment of a POST action."""
    path = "/" + path.strip("/")
    if operation_name.endswith("/action"):
        path = path.rsplit("/", 1)[0]
    return path


def choose_resource_provider(operation_name: str) -> str:
    """The namespace of an operation name (``Microsoft.Cache``)."""
    return operation_name.split("/", 1)[0]


def choose_resource_type(operation_name: str) -> str:
    """The resource type an operation acts on (``Microsoft.Cache/redisEnterprise/databases``)."""
    parts = operation_name.split("/")
    return "/".join(parts[:-2] if parts[-1] == "action" else parts[:-1])


def choose_caller(claims: Mapping[str, object]) -> str:
    """Who called, as Azure's activity log names a service principal: its application id (else the
    token's subject)."""
    for name in ("upn", "appid", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def plan_kept_claims(claims: Mapping[str, object]) -> dict[str, str]:
    """The claims an entry keeps, as text (Azure's EventData.claims is a map of strings)."""
    return {k: str(claims[k]) for k in _KEPT_CLAIMS if claims.get(k) not in (None, "")}


def plan_request_outcome(
    started: ActivityEvent,
    http_status: int,
    error: OperationError | None,
    operation_id: str | None,
    moment: datetime,
) -> ActivityEvent:
    """The entry written when the API answered a recorded request: Failed with the error for an
    error answer, Accepted when a long-running operation goes on (then ``operation_id`` is the
    operation's, which its end entry will carry), else Succeeded."""
    if error is not None or http_status >= 400:
        status = ActivityStatus.FAILED
    elif operation_id is not None:
        status = ActivityStatus.ACCEPTED
    else:
        status = ActivityStatus.SUCCEEDED
    return dataclasses.replace(
        started,
        event_data_id=f"{started.event_data_id}-{status.value.lower()}",
        operation_id=operation_id or started.operation_id,
        status=status,
        event_timestamp=render_event_time(moment),
        http_status=http_status,
        error=error,
    )


def plan_operation_end(
    accepted: ActivityEvent, succeeded: bool, error: OperationError | None, end_time: str
) -> ActivityEvent:
    """The entry written when the long-running operation behind an Accepted entry ends: the same
    caller, correlation and operation, Succeeded or Failed with the operation's error. Its id is
    the operation's, so that writing it twice keeps one entry."""
    status = ActivityStatus.SUCCEEDED if succeeded else ActivityStatus.FAILED
    moment = datetime.fromisoformat(end_time.replace("Z", "+00:00")) if end_time else None
    return dataclasses.replace(
        accepted,
        event_data_id=f"{accepted.operation_id}-end",
        status=status,
        event_timestamp=render_event_time(moment) if moment else accepted.event_timestamp,
        http_status=0,
        error=None if succeeded else error,
    )
