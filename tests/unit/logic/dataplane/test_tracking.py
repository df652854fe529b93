"""Client-side caching through an EnterpriseCluster endpoint: CLIENT TRACKING on every node
connection, OPTIN/OPTOUT served by tracking every read, CLIENT CACHING answered as the engine would."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.tracking import (
    OPTIN,
    OPTOUT,
    PLAIN,
    REDIRECT_REFUSED,
    TrackingPlan,
    choose_caching_reply,
    plan_tracking,
)


def _args(command: bytes) -> list[bytes]:
    return command.split()


@pytest.mark.parametrize(
    ("command", "mode", "plan"),
    [
        # Run on every node connection as sent; the client's mode follows.
        (b"CLIENT TRACKING ON", None, TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"ON"), mode=PLAIN)),
        (b"client tracking on bcast prefix a: noloop", None,
         TrackingPlan(node_args=tuple(_args(b"client tracking on bcast prefix a: noloop")), mode=PLAIN)),
        (b"CLIENT TRACKING OFF", OPTIN, TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"OFF"), mode=None)),
        # OPTIN/OPTOUT: the nodes track every read.
        (b"CLIENT TRACKING ON OPTIN", None, TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"ON"), mode=OPTIN)),
        (b"CLIENT TRACKING on optout NOLOOP", None,
         TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"on", b"NOLOOP"), mode=OPTOUT)),
        (b"CLIENT TRACKING ON OPTIN", OPTIN, TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"ON"), mode=OPTIN)),
        (b"CLIENT TRACKING ON", OPTIN, TrackingPlan(node_args=(b"CLIENT", b"TRACKING", b"ON"), mode=PLAIN)),
        # Refused here: REDIRECT, and what the engine refuses about OPTIN/OPTOUT (it never sees them).
        (b"CLIENT TRACKING ON REDIRECT 7", None, TrackingPlan(reply=REDIRECT_REFUSED)),
        (b"CLIENT TRACKING ON OPTIN BCAST", None,
         TrackingPlan(reply=b"-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n")),
        (b"CLIENT TRACKING ON OPTIN OPTOUT", None,
         TrackingPlan(reply=b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n")),
        (b"CLIENT TRACKING ON OPTOUT", OPTIN, TrackingPlan(reply=(
            b"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
            b"re-enabling it with a different mode.\r\n"))),
        # Malformed: one node answers it, as the engine does.
        (b"CLIENT TRACKING", None, TrackingPlan()),
        (b"CLIENT TRACKING MAYBE", None, TrackingPlan()),
    ],
)  # fmt: skip
def test_tracking_plans(command: bytes, mode: bytes | None, plan: TrackingPlan) -> None:
    assert plan_tracking(_args(command), mode) == plan


@pytest.mark.parametrize(
    ("command", "mode", "reply"),
    [
        (b"CLIENT CACHING YES", OPTIN, b"+OK\r\n"),
        (b"CLIENT CACHING no", OPTOUT, b"+OK\r\n"),
        (b"CLIENT CACHING YES", None,
         b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
         b"mode enabled\r\n"),
        (b"CLIENT CACHING YES", PLAIN, b"-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"),
        (b"CLIENT CACHING YES", OPTOUT, b"-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"),
        (b"CLIENT CACHING NO", OPTIN, b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"),
        (b"CLIENT CACHING MAYBE", OPTIN, b"-ERR syntax error\r\n"),
        (b"CLIENT CACHING", OPTIN, b"-ERR wrong number of arguments for 'client|caching' command\r\n"),
        (b"CLIENT CACHING YES NO", OPTIN, b"-ERR wrong number of arguments for 'client|caching' command\r\n"),
    ],
)  # fmt: skip
def test_client_caching_is_answered_as_the_engine_answers_it(
    command: bytes, mode: bytes | None, reply: bytes
) -> None:
    assert choose_caching_reply(_args(command), mode) == reply
