"""Microsoft.Cache/redisEnterprise/databases/events (an amr extension): a database's history of
restarts, recoveries, repairs and (with HA) failovers, as an ARM list."""

from __future__ import annotations

from typing import Any

from amr.api.context import Request, Response
from amr.api.handlers_databases import find_database
from amr.errors import InvalidParameter
from amr.model.events import EVENT_TYPE, DatabaseEvent, events_prefix

DEFAULT_TOP = 100
MAX_TOP = 1000


def render_event(event: DatabaseEvent) -> dict[str, Any]:
    """The ARM shape of an event; properties that do not apply are left out."""
    props: dict[str, Any] = {
        "time": event.time,
        "kind": event.kind.value,
        "cause": event.cause,
        "node": event.node,
        "shard": event.shard,
        "oldPrimary": event.old_primary,
        "newPrimary": event.new_primary,
        "oldPid": event.old_pid,
        "newPid": event.new_pid,
    }
    return {
        "id": f"{event.database_id}/events/{event.id}",
        "name": event.id,
        "type": EVENT_TYPE,
        "properties": {k: v for k, v in props.items() if v is not None},
    }


async def list_events(req: Request) -> Response:
    """The newest ``$top`` events of the database (default 100, at most 1000), oldest first, as
    connectionEvents lists them."""
    _, db = find_database(req)
    raw_top = req.query.get("$top") or req.query.get("top") or str(DEFAULT_TOP)
    if not raw_top.isdigit() or not 1 <= int(raw_top) <= MAX_TOP:
        raise InvalidParameter(f"'$top' must be a whole number from 1 to {MAX_TOP}, not '{raw_top}'.", "$top")
    events = req.services.store.list(DatabaseEvent, events_prefix(db.key))
    return Response(200, {"value": [render_event(e) for e in events[-int(raw_top) :]]})
