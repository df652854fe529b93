"""Provider operations, operation status and results, and the token endpoint."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from amr.api.context import Request, Response, require_subscription
from amr.api.wire_resources import render_operation
from amr.errors import ArmError
from amr.model.enums import OperationStatus
from amr.model.resources import Operation

log = logging.getLogger(__name__)

_OPERATIONS = (
    ("Microsoft.Cache/redisEnterprise/read", "Cache", "Read cache", "View the cache's settings and configuration."),
    ("Microsoft.Cache/redisEnterprise/write", "Cache", "Write cache", "Create or update a cache."),
    ("Microsoft.Cache/redisEnterprise/delete", "Cache", "Delete cache", "Delete the cache."),
    ("Microsoft.Cache/redisEnterprise/listSkusForScaling/action", "Cache", "List SKUs for scaling",
     "List the SKUs the cache can scale to."),
    ("Microsoft.Cache/redisEnterprise/databases/read", "Database", "Read database", "View the database."),
    ("Microsoft.Cache/redisEnterprise/databases/write", "Database", "Write database", "Create or update a database."),
    ("Microsoft.Cache/redisEnterprise/databases/delete", "Database", "Delete database", "Delete the database."),
    ("Microsoft.Cache/redisEnterprise/databases/listKeys/action", "Database", "List keys",
     "View the database's access keys."),
    ("Microsoft.Cache/redisEnterprise/databases/regenerateKey/action", "Database", "Regenerate key",
     "Change the database's access keys."),
    ("Microsoft.Cache/redisEnterprise/databases/flush/action", "Database", "Flush", "Delete all data in the database."),
    ("Microsoft.Cache/redisEnterprise/databases/upgradeDBRedisVersion/action", "Database", "Upgrade Redis version",
     "Upgrade the database's engine version."),
    # amr extensions (restart, firewall rules), named the way the provider names its operations.
    ("Microsoft.Cache/redisEnterprise/databases/restart/action", "Database", "Restart",
     "Restart the database's nodes, one at a time when rolling."),
    ("Microsoft.Cache/redisEnterprise/firewallRules/read", "Firewall rule", "Read firewall rule",
     "View the cache's firewall rules."),
    ("Microsoft.Cache/redisEnterprise/firewallRules/write", "Firewall rule", "Write firewall rule",
     "Create or update a firewall rule."),
    ("Microsoft.Cache/redisEnterprise/firewallRules/delete", "Firewall rule", "Delete firewall rule",
     "Delete a firewall rule."),
    ("Microsoft.Cache/locations/operationsStatus/read", "Operation status", "Read operation status",
     "View the status of a long-running operation."),
)  # fmt: skip


async def list_operations(req: Request) -> Response:
    value = [
        {
            "name": name,
            "isDataAction": False,
            "display": {
                "provider": "Microsoft Cache",
                "resource": resource,
                "operation": op,
                "description": text,
            },
            "origin": "user,system",
        }
        for name, resource, op, text in _OPERATIONS
    ]
    return Response(200, {"value": value})


def _find_operation(req: Request) -> Operation:
    require_subscription(req)
    op = req.services.store.get(Operation, req.params["operationId"])
    if op is None:
        raise ArmError("ResourceNotFound", f"The operation '{req.params['operationId']}' was not found.", 404)
    return op


async def get_operation_status(req: Request) -> Response:
    op = _find_operation(req)
    # Pollers wait Retry-After of the latest response, else 30 s (azure-core): keep them at 1 s.
    headers = {} if op.status.done else {"Retry-After": "1"}
    return Response(200, render_operation(op), headers)


async def get_operation_result(req: Request) -> Response:
    op = _find_operation(req)
    if not op.status.done:
        return Response(202, None, {"Location": req.url, "Retry-After": "1"})
    if op.status is OperationStatus.FAILED and op.error:
        raise ArmError(op.error.code, op.error.message, 400)
    return Response(204 if op.action in ("delete",) else 200, None)


async def issue_token(req: Request) -> Response:
    if req.params["tenantId"].lower() != req.services.tenant_id.lower():
        return Response(
            400,
            {"error": "invalid_tenant", "error_description": f"Tenant '{req.params['tenantId']}' not found."},
        )
    throttle, now = req.services.token_throttle, req.services.monotonic()
    # A refused source is refused whatever it sends, the right secret included: otherwise the
    # answer to a guess would still tell a good secret from a bad one.
    wait = throttle.retry_after(req.source, now)
    if wait is not None:
        return Response(
            429,
            {
                "error": "temporarily_unavailable",
                "error_description": "Too many wrong client secrets from this address: "
                f"retry after {wait} seconds.",
            },
            {"Retry-After": str(wait)},
        )
    form = {k: v[0] for k, v in parse_qs(req.body.decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials":
        return Response(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "Only grant_type=client_credentials is supported.",
            },
        )
    try:
        token, lifetime = req.services.tokens.issue(
            form.get("client_id", ""), form.get("client_secret", ""), form.get("scope", "")
        )
    except ArmError as e:
        if e.code != "invalid_client":
            return Response(e.status, {"error": e.code, "error_description": e.message})
        if throttle.record_failure(req.source, now):
            log.warning("token endpoint: source refused after repeated wrong client secrets",
                        extra={"source": req.source})  # fmt: skip
        return Response(
            401, {"error": "invalid_client", "error_description": "The client id or secret is not valid."}
        )
    return Response(
        200,
        {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
    )


async def openid_configuration(req: Request) -> Response:
    tenant = req.params["tenantId"]
    base = f"{req.base_url}/{tenant}"
    return Response(
        200,
        {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "tenant_region_scope": None,
        },
    )
