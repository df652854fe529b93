"""The activity log query: ``GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values``
with Azure's ``$filter`` and ``$select``, newest entries first, paged through ``nextLink``."""

from __future__ import annotations

from urllib.parse import urlencode

from amr.api.context import Request, Response, require_subscription
from amr.api.wire_activity import render_activity_event
from amr.logic.arm.activity_filter import (
    parse_activity_filter,
    parse_activity_select,
    parse_skip_token,
    render_skip_token,
)

ACTIVITY_LOG_API_VERSIONS = ("2015-04-01",)


def _query_value(req: Request, name: str) -> str | None:
    # OData names arrive as sent ($filter, $skipToken or $skiptoken): match them without case.
    for key, value in req.query.items():
        if key.lower() == name.lower():
            return value
    return None


async def list_activity_log(req: Request) -> Response:
    require_subscription(req)
    s = req.services
    filter_text = _query_value(req, "$filter")
    select_text = _query_value(req, "$select")
    query = parse_activity_filter(filter_text, s.now())
    select = parse_activity_select(select_text)
    token = _query_value(req, "$skipToken")
    after = parse_skip_token(token) if token else None
    size = max(1, s.settings.api.activity_log_page_size)
    events = s.store.list_activity(query, after, size + 1)
    page = events[:size]
    body: dict[str, object] = {"value": [render_activity_event(e, select) for _, e in page]}
    if len(events) > size:
        seq, last = page[-1]
        params = {"api-version": req.api_version, "$filter": filter_text or ""}
        if select_text:
            params["$select"] = select_text
        params["$skipToken"] = render_skip_token(last.event_timestamp, seq)
        body["nextLink"] = f"{req.base_url}{req.path}?{urlencode(params)}"
    return Response(200, body)
