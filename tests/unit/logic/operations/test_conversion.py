"""amr.logic.operations.conversion: which steps bring a NoCluster database's nodes to cluster mode, data kept."""

from __future__ import annotations

import pytest

from amr.logic.operations.conversion import (
    ConversionAction,
    ConversionNode,
    ConvertPrimary,
    RecreateEmpty,
    StartClustered,
    choose_conversion_blocker,
    parse_cluster_enabled,
    parse_conf_cluster_enabled,
    plan_conversion,
)

P, R = "d-0-0", "d-0-1"
STORE = {0: P}


def node(name: str, running: bool, clustered: bool | None, role: str | None = None) -> ConversionNode:
    return ConversionNode(name, 0, running, clustered, role)


@pytest.mark.parametrize(
    ("nodes", "aof", "expected"),
    [
        # Nothing to convert: all clustered, or new nodes (no config yet).
        ([node(P, True, True), node(R, True, True)], False, []),
        ([node(P, False, None)], False, []),
        # The running master goes first, alone, with a pause and a snapshot.
        ([node(P, True, False, "master"), node(R, True, False, "slave")], False, [ConvertPrimary(P, True, True)]),
        # With AOF on, no snapshot: the engine flushes the AOF at its stop and reloads it.
        ([node(P, True, False, "master"), node(R, True, False, "slave")], True, [ConvertPrimary(P, True, False)]),
        # A failover moved the primary: the node that is master now keeps the data.
        ([node(P, True, False, "slave"), node(R, True, False, "master")], False, [ConvertPrimary(R, True, True)]),
        # The primary is down and its replica runs: the replica has the freshest copy.
        ([node(P, False, False), node(R, True, False, "slave")], False, [ConvertPrimary(R, True, True)]),
        # Nothing runs: the store's primary starts clustered with its files.
        ([node(P, False, False), node(R, False, False)], False, [ConvertPrimary(P, False, False)]),
        # The primary runs clustered: the replica is recreated empty (it must not claim slots).
        ([node(P, True, True, "master"), node(R, True, False, "slave")], False, [RecreateEmpty(R)]),
        ([node(P, True, True, "master"), node(R, False, False)], False, [RecreateEmpty(R)]),
        # A crash left the converted primary stopped: start it before anything else.
        ([node(P, False, True), node(R, True, False, "slave")], False, [StartClustered(P)]),
        # Two masters, or several running and no master: no clear holder, nothing decided.
        ([node(P, True, False, "master"), node(R, True, False, "master")], False, []),
        ([node(P, True, False, "slave"), node(R, True, False, "slave")], False, []),
        # The primary runs but does not answer yet: its running replica is not taken as the holder.
        ([ConversionNode(P, 0, False, False, silent=True), node(R, True, False, "slave")], False, []),
    ],
    ids=[
        "all-clustered", "new-node", "primary-first", "aof", "after-failover", "primary-down",
        "nothing-runs", "replica-after", "replica-stopped", "resume-stopped-primary", "two-masters",
        "no-master", "primary-silent",
    ],
)  # fmt: skip
def test_plan_conversion(nodes: list[ConversionNode], aof: bool, expected: list[ConversionAction]) -> None:
    assert plan_conversion(nodes, STORE, aof) == expected


def test_blocker_says_why_nothing_is_decided() -> None:
    stuck = [node(P, True, False, "master"), node(R, True, False, "master")]
    assert "no single primary" in choose_conversion_blocker(stuck) and P in choose_conversion_blocker(stuck)
    assert choose_conversion_blocker([node(P, True, False, "master"), node(R, True, False, "slave")]) == ""
    silent = [ConversionNode(P, 0, False, False, silent=True), node(R, True, False, "slave")]
    assert choose_conversion_blocker(silent) == f"shard 0: {P} runs but does not answer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("# Cluster\r\ncluster_enabled:1\r\n", True), ("cluster_enabled:0", False), ("", None)],
)
def test_parse_cluster_enabled(text: str, expected: bool | None) -> None:
    assert parse_cluster_enabled(text) is expected


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ("port 1\ncluster-enabled yes\n", True),
        ("port 1\n", False),
        ("cluster-enabled no\n", False),
        (None, None),
    ],
)
def test_parse_conf_cluster_enabled(conf: str | None, expected: bool | None) -> None:
    assert parse_conf_cluster_enabled(conf) is expected
