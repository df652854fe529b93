"""How a node of an HA database starts (amr.logic.node_launch): never as an empty primary that its
replica would copy."""

from __future__ import annotations

import pytest

from amr.logic.node_launch import PeerView, choose_launch, parse_replication_info

OWN = 8501
PEER = 8502


@pytest.mark.parametrize(
    ("peers", "cluster", "waited", "wait", "replica_of"),
    [
        # No peers, or none answering: start as configured at once.
        ([], False, 0, False, None),
        ([None], False, 0, False, None),
        # The peer was promoted: join it (non-clustered: as its replica; cluster: the cluster does it).
        ([PeerView(PEER, "master")], False, 0, False, PEER),
        ([PeerView(PEER, "master")], True, 0, False, None),
        # The replica lost its link to this node a moment ago: this node died; wait for the failover.
        ([PeerView(PEER, "slave", OWN, False, 1)], False, 0, True, None),
        ([PeerView(PEER, "slave", OWN, False, 0)], True, 5999, True, None),
        # The replica has not noticed yet (its link still says up): this node is not running, so wait.
        ([PeerView(PEER, "slave", OWN, True, None)], False, 0, True, None),
        # ... but not forever.
        ([PeerView(PEER, "slave", OWN, False, 7)], False, 6000, False, None),
        # The replica never synced since it started (everything restarted): nothing to wait for.
        ([PeerView(PEER, "slave", OWN, False, None)], False, 0, False, None),
        # A replica of another node is not waiting for this one.
        ([PeerView(PEER, "slave", 9999, False, 1)], False, 0, False, None),
    ],
)
def test_choose_launch(
    peers: list[PeerView | None], cluster: bool, waited: float, wait: bool, replica_of: int | None
) -> None:
    decision = choose_launch(OWN, peers, cluster, waited, rejoin_wait_ms=6000)
    assert (decision.wait, decision.replica_of) == (wait, replica_of)
    assert decision.reason


def test_parse_replication_info_of_a_replica_that_lost_its_primary() -> None:
    text = (
        "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:8501\r\n"
        "master_link_status:down\r\nmaster_link_down_since_seconds:3\r\n"
    )
    assert parse_replication_info(PEER, text) == PeerView(PEER, "slave", 8501, False, 3)


def test_parse_replication_info_of_a_replica_that_never_synced_or_is_in_sync() -> None:
    never = (
        "role:slave\r\nmaster_port:8501\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:-1\r\n"
    )
    assert parse_replication_info(PEER, never) == PeerView(PEER, "slave", 8501, False, None)
    up = "role:slave\r\nmaster_port:8501\r\nmaster_link_status:up\r\n"
    assert parse_replication_info(PEER, up) == PeerView(PEER, "slave", 8501, True, None)


def test_parse_replication_info_of_a_primary_and_of_nonsense() -> None:
    assert parse_replication_info(PEER, "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n") == PeerView(
        PEER, "master"
    )
    assert parse_replication_info(PEER, "ERR nothing") is None
