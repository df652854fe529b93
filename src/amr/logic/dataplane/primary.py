"""Which node the gateway sends a database port's new connections to: the one that says it is primary.

The gateway asks every candidate node of a route for its ``ROLE`` a few times a second; these pure
functions read the answers and choose, so a failover (planned or not) moves the endpoint without
waiting for the control plane.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RoleAnswer:
    """A node's last ``ROLE`` reply: ``role`` is ``master``, ``slave`` or ``sentinel``; ``replicas``
    counts the replicas a master lists."""

    role: str
    replicas: int = 0


def parse_role_reply(reply: object) -> RoleAnswer | None:
    """Read a decoded ``ROLE`` reply (a list whose first item is the role); None if it is not one."""
    if not isinstance(reply, list) or not reply:
        return None
    first = reply[0]
    role = first.decode(errors="replace") if isinstance(first, bytes) else str(first)
    if role == "master":
        replicas = reply[2] if len(reply) > 2 and isinstance(reply[2], list) else []
        return RoleAnswer("master", len(replicas))
    if role in ("slave", "replica"):
        return RoleAnswer("slave")
    if role == "sentinel":
        return RoleAnswer("sentinel")
    return None


def choose_primary(candidates: Sequence[str], answers: Mapping[str, RoleAnswer | None], current: str) -> str:
    """The candidate new connections should go to, given each one's last ``ROLE`` answer (None: it
    did not answer).

    Exactly one master: that one. Several (a promotion the old primary has not noticed yet): the
    ones that list replicas are preferred; among those, the current choice is kept, else the first
    candidate, so the choice never flaps between two masters. No master at all (every node down, or
    a failover in progress): keep the current choice.
    """
    masters = [c for c in candidates if (a := answers.get(c)) is not None and a.role == "master"]
    if not masters:
        return current
    if len(masters) == 1:
        return masters[0]
    with_replicas = [c for c in masters if (a := answers.get(c)) is not None and a.replicas > 0]
    pool = with_replicas or masters
    return current if current in pool else pool[0]
