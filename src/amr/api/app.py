"""The ARM API as an ASGI app.

ARM paths are case-insensitive, so routing is ours: one catch-all FastAPI route hands every request
to a table of (method, path pattern) matched segment by segment without regard to case. Every error
leaves as the ARM envelope; nothing escapes as a traceback or a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse
from fastapi.responses import Response as HttpResponse

from amr.api import handlers_activity as activity
from amr.api import handlers_alerts as alerts
from amr.api import handlers_clusters as clusters
from amr.api import handlers_databases as databases
from amr.api import handlers_events as events
from amr.api import handlers_firewall as firewall
from amr.api import handlers_groups as groups
from amr.api import handlers_metrics as metrics
from amr.api import handlers_misc as misc
from amr.api import handlers_subscriptions as subscriptions
from amr.api.activity import CORRELATION_HEADER, choose_correlation_id, finish_activity, start_activity
from amr.api.context import (
    CACHE_API_VERSIONS,
    RESOURCES_API_VERSIONS,
    SUBSCRIPTIONS_API_VERSIONS,
    Request,
    Response,
    Services,
)
from amr.api.limits import RequestLimits
from amr.api.wire_alerts import (
    ACTION_GROUPS_API_VERSIONS,
    FIRED_ALERTS_API_VERSIONS,
    METRIC_ALERTS_API_VERSIONS,
)
from amr.api.wire_metrics import METRICS_API_VERSIONS
from amr.api.wire_tenancy import METADATA_API_VERSIONS
from amr.errors import AmrError, ArmError, ConcurrencyError
from amr.logcontext import log_context
from amr.model.activity import ActivityEvent

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

_B = "subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Cache/redisEnterprise"
_C = _B + "/{clusterName}"
_D = _C + "/databases/{databaseName}"
_INS = "subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Insights"
_MA, _AG = METRIC_ALERTS_API_VERSIONS, ACTION_GROUPS_API_VERSIONS
_LOC = "subscriptions/{subscriptionId}/providers/Microsoft.Cache/locations/{location}"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    versions: tuple[str, ...] | None  # None: no api-version needed
    authenticated: bool = True


def _r(method: str, path: str, handler: Handler, versions: tuple[str, ...] | None = CACHE_API_VERSIONS,
       authenticated: bool = True) -> Route:  # fmt: skip
    return Route(method, tuple(path.split("/")), handler, versions, authenticated)


ROUTES: tuple[Route, ...] = (
    _r("POST", "{tenantId}/oauth2/v2.0/token", misc.issue_token, None, authenticated=False),
    _r("GET", "{tenantId}/v2.0/.well-known/openid-configuration", misc.openid_configuration, None, False),
    _r("GET", "metadata/endpoints", subscriptions.cloud_metadata, METADATA_API_VERSIONS, authenticated=False),
    _r("GET", "providers/Microsoft.Cache/operations", misc.list_operations),
    _r("GET", "tenants", subscriptions.list_tenants, SUBSCRIPTIONS_API_VERSIONS),
    _r("GET", "subscriptions", subscriptions.list_subscriptions, SUBSCRIPTIONS_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}", subscriptions.get_subscription, SUBSCRIPTIONS_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/locations", subscriptions.list_locations, SUBSCRIPTIONS_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/resourcegroups", groups.list_groups, RESOURCES_API_VERSIONS),
    _r("PUT", "subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}", groups.put_group, RESOURCES_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}", groups.get_group, RESOURCES_API_VERSIONS),
    _r("HEAD", "subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}", groups.check_group_exists,
       RESOURCES_API_VERSIONS),
    _r("DELETE", "subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}", groups.delete_group,
       RESOURCES_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/operationresults/{operationId}", groups.get_group_operation_result,
       RESOURCES_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.Cache/redisEnterprise", clusters.list_clusters),
    _r("GET", _LOC + "/operationsStatus/{operationId}", misc.get_operation_status),
    _r("GET", _LOC + "/operationResults/{operationId}", misc.get_operation_result),
    _r("GET", _B, clusters.list_clusters_in_group),
    _r("PUT", _C, clusters.put_cluster),
    _r("GET", _C, clusters.get_cluster),
    _r("PATCH", _C, clusters.patch_cluster),
    _r("DELETE", _C, clusters.delete_cluster),
    _r("POST", _C + "/listSkusForScaling", clusters.list_skus_for_scaling),
    _r("GET", _C + "/firewallRules", firewall.list_rules),
    _r("PUT", _C + "/firewallRules/{ruleName}", firewall.put_rule),
    _r("GET", _C + "/firewallRules/{ruleName}", firewall.get_rule),
    _r("DELETE", _C + "/firewallRules/{ruleName}", firewall.delete_rule),
    _r("GET", _C + "/databases", databases.list_databases),
    _r("PUT", _D, databases.put_database),
    _r("GET", _D, databases.get_database),
    _r("PATCH", _D, databases.patch_database),
    _r("DELETE", _D, databases.delete_database),
    _r("POST", _D + "/listKeys", databases.list_keys),
    _r("POST", _D + "/regenerateKey", databases.regenerate_key),
    _r("POST", _D + "/flush", databases.flush),
    _r("POST", _D + "/restart", databases.restart),
    _r("POST", _D + "/upgradeDBRedisVersion", databases.upgrade_redis_version),
    _r("GET", _D + "/connectionEvents", databases.connection_events),
    _r("GET", _D + "/events", events.list_events),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values",
       activity.list_activity_log, activity.ACTIVITY_LOG_API_VERSIONS),
    _r("GET", _C + "/providers/Microsoft.Insights/metrics", metrics.list_metrics, METRICS_API_VERSIONS),
    _r("GET", _C + "/providers/Microsoft.Insights/metricDefinitions", metrics.list_metric_definitions,
       METRICS_API_VERSIONS),
    _r("GET", _C + "/providers/Microsoft.Insights/metricNamespaces", metrics.list_metric_namespaces,
       METRICS_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.Insights/metricAlerts", alerts.list_metric_alerts, _MA),
    _r("GET", _INS + "/metricAlerts", alerts.list_metric_alerts, _MA),
    _r("PUT", _INS + "/metricAlerts/{ruleName}", alerts.put_metric_alert, _MA),
    _r("GET", _INS + "/metricAlerts/{ruleName}", alerts.get_metric_alert, _MA),
    _r("PATCH", _INS + "/metricAlerts/{ruleName}", alerts.patch_metric_alert, _MA),
    _r("DELETE", _INS + "/metricAlerts/{ruleName}", alerts.delete_metric_alert, _MA),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.Insights/actionGroups", alerts.list_action_groups, _AG),
    _r("GET", _INS + "/actionGroups", alerts.list_action_groups, _AG),
    _r("PUT", _INS + "/actionGroups/{actionGroupName}", alerts.put_action_group, _AG),
    _r("GET", _INS + "/actionGroups/{actionGroupName}", alerts.get_action_group, _AG),
    _r("PATCH", _INS + "/actionGroups/{actionGroupName}", alerts.patch_action_group, _AG),
    _r("DELETE", _INS + "/actionGroups/{actionGroupName}", alerts.delete_action_group, _AG),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.AlertsManagement/alerts", alerts.list_fired_alerts,
       FIRED_ALERTS_API_VERSIONS),
    _r("GET", "subscriptions/{subscriptionId}/providers/Microsoft.AlertsManagement/alerts/{alertId}",
       alerts.get_fired_alert, FIRED_ALERTS_API_VERSIONS),
)  # fmt: skip


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
    """The route for a request and its path parameters; False when the path exists but not for
    this method; None when no route has this path."""
    segments = tuple(s for s in path.strip("/").split("/"))
    path_known = False
    for route in ROUTES:
        if len(route.pattern) != len(segments):
            continue
        params: dict[str, str] = {}
        for want, got in zip(route.pattern, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want.lower() != got.lower():
                break
        else:
            if route.method == method:
                return route, params
            path_known = True
    return False if path_known else None


def _check_api_version(route: Route, query: dict[str, str]) -> None:
    if route.versions is None:
        return
    version = query.get("api-version")
    if not version:
        raise ArmError(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests. "
            f"Supported versions: {', '.join(route.versions)}.",
            400,
        )
    if version not in route.versions:
        raise ArmError(
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{','.join(route.versions)}'.",
            400,
        )


def _render(response: Response) -> HttpResponse:
    if response.body is None:
        return HttpResponse(status_code=response.status, headers=response.headers)
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)


def _error(e: ArmError, request_id: str, headers: dict[str, str]) -> HttpResponse:
    # ARM echoes the client's request id on failures too: that is when callers need it most.
    if request_id:
        headers = {**headers, "x-ms-client-request-id": request_id}
    return JSONResponse(e.to_body(), status_code=e.status, headers=headers)


def _arm_error(e: Exception, path: str, request_id: str) -> ArmError:
    """The ARM error a request that raised ``e`` is answered with (a bare 500 never leaves)."""
    if isinstance(e, ConcurrencyError):
        return ArmError(
            "Conflict", f"The resource changed while this request ran ({e}); retry the request.", 409
        )
    if isinstance(e, ArmError):
        return e
    if isinstance(e, AmrError):
        log.error("request failed", extra={"path": path, "request_id": request_id})
        return ArmError("InternalServerError", f"amr could not complete the request: {e}", 500)
    log.error("unexpected error", exc_info=e, extra={"path": path, "request_id": request_id})
    return ArmError("InternalServerError", "amr hit an unexpected error; see AMR_HOME/logs/api.log.", 500)


def create_app(services: Services) -> FastAPI:
    """The API app over ``services``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    limits = services.settings.api
    app.add_middleware(RequestLimits, max_body_bytes=limits.max_body_bytes, body_timeout=limits.body_timeout)

    @app.api_route("/{path:path}", methods=["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def dispatch(request: HttpRequest, path: str) -> HttpResponse:
        request_id = request.headers.get("x-ms-client-request-id", "")
        with log_context(request_id=request_id):
            return await handle(request, path, request_id)

    async def handle(request: HttpRequest, path: str, request_id: str) -> HttpResponse:
        # ARM answers every request with its correlation id, the caller's if it sent one.
        correlation_id = choose_correlation_id(request.headers)
        echo = {CORRELATION_HEADER: correlation_id}
        started: ActivityEvent | None = None
        req: Request | None = None
        try:
            found = match_route(request.method, "/" + path)
            if found is None:
                raise ArmError("NotFound", f"No API at '{request.url.path}'. Check the URL.", 404)
            if found is False:
                raise ArmError(
                    "MethodNotAllowed",
                    f"The method {request.method} is not supported at '{request.url.path}'.",
                    405,
                )
            assert isinstance(found, tuple)
            route, params = found
            claims = (
                services.tokens.verify(request.headers.get("authorization")) if route.authenticated else None
            )
            query = dict(request.query_params)
            _check_api_version(route, query)
            req = Request(
                method=request.method,
                params=params,
                query=query,
                body=await request.body(),
                base_url=str(request.base_url).rstrip("/"),
                services=services,
                headers=dict(request.headers),
                path=request.url.path,
                source=request.client.host if request.client else "",
            )
            if claims is not None:
                started = start_activity(req, route.pattern, claims, correlation_id)
            response = await route.handler(req)
        except Exception as e:
            error = _arm_error(e, request.url.path, request_id)
            finish_activity(services, started, req, error.status, error)
            return _error(error, request_id, echo)
        finish_activity(services, started, req, response.status, None)
        headers = response.headers
        headers.update(echo)
        if request_id:
            headers["x-ms-client-request-id"] = request_id
        return _render(response)

    return app
