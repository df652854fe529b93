"""What every handler gets: the request, its path parameters and the services behind the API."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from amr.api.auth import TokenService
from amr.api.metrics_reader import MetricsReader
from amr.api.wire_resources import operation_status_path
from amr.errors import ArmError
from amr.logic.arm.locations import location_key
from amr.logic.operations.lifecycle import R, plan_deleting
from amr.logic.security.token_throttle import TokenThrottle
from amr.model.enums import OperationStatus, ProvisioningState
from amr.model.resources import Database, Operation
from amr.settings import ApiSettings, Settings
from amr.store.repository import Store

CACHE_API_VERSIONS = (
    "2024-09-01-preview",
    "2024-10-01",
    "2025-04-01",
    "2025-05-01-preview",
    "2025-07-01",
    "2025-08-01-preview",
    "2026-02-01-preview",
    "2026-05-01-preview",
    "2026-06-01-preview",
    "2026-08-01",
)
RESOURCES_API_VERSIONS = (
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
)
# Microsoft.Resources' subscriptions and tenants (az 2.91 and azure-mgmt-resource-subscriptions send
# 2022-12-01; older SDKs and tools the earlier ones).
SUBSCRIPTIONS_API_VERSIONS = (
    "2016-06-01",
    "2018-06-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2021-01-01",
    "2022-12-01",
)


class ReconcilerHandle(Protocol):
    """What the API asks of the reconciler."""

    def notify(self) -> None:
        """Something changed in the store: reconcile soon."""
        ...

    async def apply_database(self, db: Database) -> None:
        """Bring the database's nodes in line with its record now (raises NodeError on failure)."""
        ...

    async def used_memory(self, db: Database) -> int:
        """Bytes of data the database holds now (0 when unknown)."""
        ...

    async def nodes_down(self, db: Database) -> list[str]:
        """The database's nodes that do not serve now, each described in words ("d1-0-0 (stopped)")."""
        ...

    def start_flush(self, db: Database, operation: Operation) -> None:
        """Empty the database in the background and complete ``operation``."""
        ...

    def start_restart(self, db: Database, operation: Operation) -> None:
        """Restart the database's nodes in the background (rolling unless ``operation.action`` is a
        plain restart, see amr.logic.operations.rolling) and complete ``operation``."""
        ...


def token_throttle_for(api: ApiSettings) -> TokenThrottle:
    """The token endpoint's throttle with the limits of ``api`` settings."""
    return TokenThrottle(api.token_failure_limit, api.token_failure_window, api.token_cooldown)


@dataclass
class Services:
    """The API's collaborators, wired by amr.app."""

    settings: Settings
    store: Store
    reconciler: ReconcilerHandle
    tokens: TokenService
    subscription_id: str
    tenant_id: str
    port_is_free: Callable[[int], bool]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    token_throttle: TokenThrottle = field(default_factory=lambda: token_throttle_for(ApiSettings()))
    monotonic: Callable[[], float] = field(default=time.monotonic)
    # The metric store, read by the Azure Monitor metrics routes (opened at their first request).
    metrics: MetricsReader = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = MetricsReader(self.settings)

    def timestamp(self) -> str:
        return self.now().isoformat()

    def new_access_key(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(43)) + "="

    def new_uid(self) -> str:
        return "d" + secrets.token_hex(4)


@dataclass
class Request:
    """One API request as handlers see it."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    base_url: str
    services: Services
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    source: str = ""  # the client's address
    # The long-running operation the request began, if any (the activity log records its end).
    operation: Operation | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}?api-version={self.api_version}"

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def start_operation(self, resource_id: str, location: str, action: str) -> Operation:
        s = self.services
        op = Operation(
            id=s.new_id(),
            subscription_id=s.subscription_id,
            location=location,
            resource_id=resource_id,
            action=action,
            status=OperationStatus.IN_PROGRESS,
            start_time=s.timestamp(),
        )
        s.store.insert(op)
        self.operation = op
        return op

    def async_operation_url(self, op: Operation) -> str:
        return f"{self.base_url}{operation_status_path(op)}?api-version={self.api_version}"

    def operation_result_url(self, op: Operation) -> str:
        return (
            f"{self.base_url}/subscriptions/{op.subscription_id}/providers/Microsoft.Cache/locations/"
            f"{location_key(op.location)}/operationResults/{op.id}?api-version={self.api_version}"
        )


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def lro_headers(req: Request, op: Operation, with_location: bool) -> dict[str, str]:
    """Azure-AsyncOperation (and Location where the spec has it) plus Retry-After: 1."""
    headers = {"Azure-AsyncOperation": req.async_operation_url(op), "Retry-After": "1"}
    if with_location:
        headers["Location"] = req.operation_result_url(op)
    return headers


def require_subscription(req: Request) -> str:
    sub = req.params["subscriptionId"]
    if sub.lower() != req.services.subscription_id.lower():
        raise ArmError(
            "SubscriptionNotFound",
            f"The subscription '{sub}' could not be found. This amr installation has subscription "
            f"'{req.services.subscription_id}' (amr account show).",
            404,
        )
    return req.services.subscription_id


def start_delete(req: Request, resource: R, location: str) -> Response:
    """Begin the long-running delete of a cluster or database: mark it Deleting (once), record the
    operation, wake the reconciler, answer 202 with the polling headers."""
    op = req.start_operation(resource.id, location, "delete")
    if resource.provisioning_state is not ProvisioningState.DELETING:
        req.services.store.replace(resource, plan_deleting(resource))
    req.services.reconciler.notify()
    return Response(202, None, lro_headers(req, op, with_location=True))
