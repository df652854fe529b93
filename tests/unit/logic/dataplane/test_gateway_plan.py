"""plan_listener_changes: what happens to each port when the route table changes."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.listener_plan import ListenerChange, plan_listener_changes
from amr.model.routes import Route


def r(port: int, tls: bool = True, target: str = "/s/a.sock", db: str = "db1", v: str = "1.2") -> Route:
    return Route(port=port, tls=tls, target=target, database_id=db, min_tls_version=v)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([], [], []),
        ([r(1)], [r(1)], []),
        ([], [r(1)], [ListenerChange("start", 1, r(1))]),
        ([r(1)], [], [ListenerChange("stop", 1, None)]),
        ([r(1)], [r(1, target="/s/b.sock")], [ListenerChange("retarget", 1, r(1, target="/s/b.sock"))]),
        ([r(1)], [r(1, db="db2")], [ListenerChange("retarget", 1, r(1, db="db2"))]),
        ([r(1)], [r(1, tls=False)], [ListenerChange("restart", 1, r(1, tls=False))]),
        ([r(1)], [r(1, v="1.3")], [ListenerChange("restart", 1, r(1, v="1.3"))]),
        (
            [r(1, target="/x")],
            [r(1, tls=False, target="/y")],
            [ListenerChange("restart", 1, r(1, tls=False, target="/y"))],
        ),
    ],
)
def test_single_port(old: list[Route], new: list[Route], expected: list[ListenerChange]) -> None:
    assert plan_listener_changes(old, new) == expected


def test_order_stops_first_then_restart_retarget_start() -> None:
    old = [r(5), r(3), r(4, target="/t"), r(2)]
    new = [r(3, tls=False), r(4, target="/u"), r(1), r(6)]
    plan = plan_listener_changes(old, new)
    assert [(c.action, c.port) for c in plan] == [
        ("stop", 2),
        ("stop", 5),
        ("restart", 3),
        ("retarget", 4),
        ("start", 1),
        ("start", 6),
    ]


def test_accepts_mappings() -> None:
    assert plan_listener_changes({1: r(1)}, {1: r(1), 2: r(2)}) == [ListenerChange("start", 2, r(2))]


def test_no_changes_for_identical_tables_in_other_order() -> None:
    assert plan_listener_changes([r(1), r(2)], [r(2), r(1)]) == []


def test_access_or_limit_change_is_an_in_place_update() -> None:
    old = r(1)
    fw = Route(1, True, "/s/a.sock", "db1", "1.2", allowed_sources=(("10.0.0.1", "10.0.0.9"),))
    lim = Route(1, True, "/s/a.sock", "db1", "1.2", max_connections=3)
    assert plan_listener_changes([old], [fw]) == [ListenerChange("update", 1, fw)]
    assert plan_listener_changes([fw], [lim]) == [ListenerChange("update", 1, lim)]
    both = Route(1, True, "/s/b.sock", "db1", "1.2", max_connections=3)
    assert plan_listener_changes([old], [both]) == [ListenerChange("retarget", 1, both)]
    tls = Route(1, False, "/s/a.sock", "db1", "1.2", max_connections=3)
    assert plan_listener_changes([old], [tls]) == [ListenerChange("restart", 1, tls)]
