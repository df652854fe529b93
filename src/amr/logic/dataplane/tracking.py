"""Client-side caching (CLIENT TRACKING) through an EnterpriseCluster endpoint.

A client's keys live on several shards, and each node only sends invalidations for the keys it
served on the connection that asked for tracking. So the gateway turns tracking on (or off) on every
node connection the client has, and on every one it opens later (replayed like AUTH/HELLO), and
passes each node's invalidation pushes on. A tracking client whose node connection is lost is
closed, as a client of a single node would be, so that it drops its cache (the node forgot what it
tracked for it).

OPTIN and OPTOUT make ``CLIENT CACHING YES|NO`` apply to the client's *next* command, which may go to
any shard: the gateway cannot make the flag follow it. Instead the nodes track every read (plain
tracking, OPTIN/OPTOUT left out) and the gateway answers CLIENT CACHING itself as the engine would.
Tracking more than asked never loses an invalidation; the client may receive some for keys it did
not cache, which it ignores.

REDIRECT sends invalidations to another connection by its client id: ids are per node, and the
other connection's node connections are not this one's, so it is refused (RESP3 clients get the
invalidations on their own connection).
"""

from __future__ import annotations

from dataclasses import dataclass

# The key of the tracking command among the client's replayed commands (after AUTH/HELLO).
TRACKING_REPLAY = b"client|tracking"
# The client's tracking mode as the gateway keeps it: plain (BCAST included), OPTIN or OPTOUT.
PLAIN, OPTIN, OPTOUT = b"on", b"optin", b"optout"

REDIRECT_REFUSED = (
    b"-ERR CLIENT TRACKING REDIRECT is not available on an EnterpriseCluster endpoint: invalidations "
    b"come from every shard over this connection; use RESP3 (HELLO 3) and tracking without REDIRECT\r\n"
)
_BCAST_WITH_OPT = b"-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"
_BOTH_OPTS = b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
_SWITCH_OPT = (
    b"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
    b"re-enabling it with a different mode.\r\n"
)
_CACHING_NOT_TRACKING = (
    b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
    b"mode enabled\r\n"
)
_CACHING_YES = b"-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"
_CACHING_NO = b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
_CACHING_ARITY = b"-ERR wrong number of arguments for 'client|caching' command\r\n"


@dataclass(frozen=True, slots=True)
class TrackingPlan:
    """What to do with a CLIENT TRACKING command: answer ``reply`` at once (a refusal), or run
    ``node_args`` on every node connection (None: on one node, which answers a malformed command as
    it must), the client's mode becoming ``mode`` (None: off) if they succeed."""

    reply: bytes | None = None
    node_args: tuple[bytes, ...] | None = None
    mode: bytes | None = None


def plan_tracking(args: list[bytes], mode: bytes | None) -> TrackingPlan:
    """The plan for ``CLIENT TRACKING ON|OFF [options]`` (``args``, the name first) of a client whose
    tracking is ``mode`` (None: off)."""
    if len(args) < 3:
        return TrackingPlan()
    switch = args[2].lower()
    if switch == b"off":
        return TrackingPlan(node_args=tuple(args), mode=None)
    if switch != b"on":
        return TrackingPlan()
    options = [a.lower() for a in args[3:]]
    if b"redirect" in options:
        return TrackingPlan(reply=REDIRECT_REFUSED)
    optin, optout = b"optin" in options, b"optout" in options
    if (optin or optout) and b"bcast" in options:
        return TrackingPlan(reply=_BCAST_WITH_OPT)
    if optin and optout:
        return TrackingPlan(reply=_BOTH_OPTS)
    if (optin and mode == OPTOUT) or (optout and mode == OPTIN):
        return TrackingPlan(reply=_SWITCH_OPT)
    node_args = tuple(a for a in args if a.lower() not in (b"optin", b"optout"))
    return TrackingPlan(node_args=node_args, mode=OPTIN if optin else OPTOUT if optout else PLAIN)


def choose_caching_reply(args: list[bytes], mode: bytes | None) -> bytes:
    """The engine's answer to ``CLIENT CACHING YES|NO`` from a client whose tracking is ``mode``:
    the gateway's nodes track every read, so the flag needs no node."""
    if len(args) != 3:
        return _CACHING_ARITY
    if mode is None:
        return _CACHING_NOT_TRACKING
    choice = args[2].lower()
    if choice == b"yes":
        return b"+OK\r\n" if mode == OPTIN else _CACHING_YES
    if choice == b"no":
        return b"+OK\r\n" if mode == OPTOUT else _CACHING_NO
    return b"-ERR syntax error\r\n"
