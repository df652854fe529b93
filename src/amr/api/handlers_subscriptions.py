"""Microsoft.Resources subscriptions, their locations and tenants, and the cloud metadata document.

amr serves one subscription in one tenant (AMR_HOME/credentials.json), the same one every resource
route checks (``require_subscription``): a token's principal sees exactly that subscription.
"""

from __future__ import annotations

from amr.api.context import Request, Response, require_subscription
from amr.api.wire_tenancy import (
    render_cloud_metadata,
    render_location_list,
    render_subscription,
    render_subscription_list,
    render_tenant,
)


async def list_subscriptions(req: Request) -> Response:
    s = req.services
    return Response(200, render_subscription_list(s.subscription_id, s.tenant_id))


async def get_subscription(req: Request) -> Response:
    sub = require_subscription(req)
    return Response(200, render_subscription(sub, req.services.tenant_id))


async def list_locations(req: Request) -> Response:
    return Response(200, render_location_list(require_subscription(req)))


async def list_tenants(req: Request) -> Response:
    return Response(200, {"value": [render_tenant(req.services.tenant_id)]})


async def cloud_metadata(req: Request) -> Response:
    """No token needed: a client reads it to learn where to get one."""
    return Response(200, render_cloud_metadata(req.base_url, req.api_version))
