"""What the gateway must do to its listeners when the route table changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from amr.model.routes import Route

ListenerAction = Literal["stop", "restart", "retarget", "update", "start"]

# Stops come first so a port freed by one route can be taken by another in the same plan.
_ORDER: dict[str, int] = {"stop": 0, "restart": 1, "retarget": 2, "update": 2, "start": 3}


@dataclass(frozen=True)
class ListenerChange:
    """One step for one port: ``route`` is the route to serve from now on (None for ``stop``)."""

    action: ListenerAction
    port: int
    route: Route | None


def _by_port(routes: Mapping[int, Route] | Iterable[Route]) -> dict[int, Route]:
    if isinstance(routes, Mapping):
        return dict(routes)
    return {r.port: r for r in routes}


def plan_listener_changes(
    old: Mapping[int, Route] | Iterable[Route], new: Mapping[int, Route] | Iterable[Route]
) -> list[ListenerChange]:
    """Decide how to go from the listeners serving ``old`` to listeners serving ``new``.

    A port only in ``old`` is stopped (listener and its open connections); a port only in ``new`` is
    started. A port in both is restarted when its TLS setting or minimum TLS version changed (the
    listening socket must be rebuilt), retargeted when its target or database changed (new
    connections go to the new target, open ones stay), updated in place when only who may connect
    (``allowed_sources``) or the connection limit changed (the listener and allowed connections stay;
    connections from sources no longer allowed are closed), and left alone otherwise. A retarget
    applies the whole route in place, access and limits included. Stops come first, then restarts,
    retargets and updates, and starts, each in port order.
    """
    before = _by_port(old)
    after = _by_port(new)
    changes: list[ListenerChange] = []
    for port in before:
        if port not in after:
            changes.append(ListenerChange("stop", port, None))
    for port, route in after.items():
        prev = before.get(port)
        if prev is None:
            changes.append(ListenerChange("start", port, route))
        elif (prev.tls, prev.min_tls_version) != (route.tls, route.min_tls_version):
            changes.append(ListenerChange("restart", port, route))
        elif (prev.target, prev.database_id) != (route.target, route.database_id):
            changes.append(ListenerChange("retarget", port, route))
        elif prev != route:
            changes.append(ListenerChange("update", port, route))
    changes.sort(key=lambda c: (_ORDER[c.action], c.port))
    return changes
