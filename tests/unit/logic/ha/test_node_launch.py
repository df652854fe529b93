"""How a node of an HA database starts (amr.logic.ha.node_launch): never as an empty primary that its
replica would copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from amr.logic.ha.node_launch import BUSY, PeerView, choose_launch
from amr.logic.ha.replication import ReplicationView, parse_replication_view
from amr.nodes.launch import NODE_SECRETS_FILE, _secrets

OWN = 8501
PEER = 8502
PRIMARY = ReplicationView("master")


def replica(of: int, link: str, synced: bool) -> ReplicationView:
    return ReplicationView("slave", of, link, synced)


@pytest.mark.parametrize(
    ("peers", "cluster", "waited", "wait", "replica_of"),
    [
        # No peers: start as configured at once.
        ({}, False, 0, False, None),
        # A peer that does not answer is asked again for a while (a lost answer must not make a
        # primary start empty), then counts as down.
        ({PEER: None}, False, 0, True, None),
        ({PEER: None}, False, 1499, True, None),
        ({PEER: None}, False, 1500, False, None),
        # A peer that is running but too busy to answer in time may be the replica holding every
        # key: it is asked again as long as a failover is waited for.
        ({PEER: BUSY}, False, 1500, True, None),
        ({PEER: BUSY}, True, 5999, True, None),
        ({PEER: BUSY}, False, 6000, False, None),
        ({PEER: BUSY, 8503: PRIMARY}, False, 0, False, 8503),
        # The peer was promoted: join it (non-clustered: as its replica; cluster: the cluster does it).
        ({PEER: PRIMARY}, False, 0, False, PEER),
        ({PEER: PRIMARY}, True, 0, False, None),
        # The replica was in sync with this node and lost it: this node died; wait for the failover.
        ({PEER: replica(OWN, "down", True)}, False, 0, True, None),
        ({PEER: replica(OWN, "down", True)}, True, 5999, True, None),
        # The replica has not noticed yet (its link still says up): this node is not running, so wait.
        ({PEER: replica(OWN, "up", True)}, False, 0, True, None),
        # ... but not forever.
        ({PEER: replica(OWN, "down", True)}, False, 6000, False, None),
        # The replica never synced since it started (everything restarted): nothing to wait for.
        ({PEER: replica(OWN, "down", False)}, False, 0, False, None),
        # A replica of another node is not waiting for this one.
        ({PEER: replica(9999, "down", True)}, False, 0, False, None),
    ],
)
def test_choose_launch(
    peers: dict[int, PeerView], cluster: bool, waited: float, wait: bool, replica_of: int | None
) -> None:
    decision = choose_launch(OWN, peers, cluster, waited, rejoin_wait_ms=6000)
    assert (decision.wait, decision.replica_of) == (wait, replica_of)
    assert decision.reason


def test_a_replica_that_lost_its_primary_or_never_synced_reads_apart() -> None:
    lost = (
        "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:8501\r\n"
        "master_link_status:down\r\nmaster_link_down_since_seconds:3\r\n"
    )
    never = (
        "role:slave\r\nmaster_port:8501\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:-1\r\n"
    )
    assert choose_launch(8501, {PEER: parse_replication_view(lost)}, False, 0, 6000).wait
    assert not choose_launch(8501, {PEER: parse_replication_view(never)}, False, 0, 6000).wait


def test_the_launcher_reads_its_own_secrets_or_none(tmp_path: Path) -> None:
    assert _secrets(tmp_path) == {}  # a node an older amr set up
    (tmp_path / NODE_SECRETS_FILE).write_text('{"replication": "r3p", "ha": "h4"}\n')
    assert _secrets(tmp_path) == {"replication": "r3p", "ha": "h4"}
    (tmp_path / NODE_SECRETS_FILE).write_text("[not a dict")
    assert _secrets(tmp_path) == {}
