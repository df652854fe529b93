"""valkey-glide and ioredis work through amr's TLS endpoints as they do against the engine itself: the
fast part of the compatibility suite (``make compat`` runs all of it, redis-py's own tests too).

One module-scoped set-up, as compat/run.py makes it: a plain valkey-server and a plain Valkey Cluster
(the baselines), and a private amr with a NoCluster, a 4-shard OSSCluster and a 4-shard
EnterpriseCluster database with replicas. Each client's script of common commands runs against each
amr database and against its baseline; a check that fails through amr and passes on the engine must
be a known, documented difference (compat/known_differences.toml). The clients install into
.cache/compat on the first run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from compat.clients import Clients, ensure_clients
from compat.engines import start_valkey, start_valkey_cluster
from compat.report import Outcome, compare, parse_known
from compat.run import KNOWN
from compat.runs import run_glide, run_ioredis
from compat.targets import AMR_DATABASES, Target, baseline_target, create_amr_target, start_amr

RUNS: dict[str, Callable[[Clients, Target, Path], dict[str, Outcome]]] = {
    "glide": run_glide,
    "ioredis": run_ioredis,
}


@dataclass
class World:
    clients: Clients
    targets: dict[str, Target]
    out: Path
    baseline_outcomes: dict[tuple[str, str], dict[str, Outcome]] = field(default_factory=dict)

    def outcomes(self, client: str, target: str) -> dict[str, Outcome]:
        return RUNS[client](self.clients, self.targets[target], self.out)

    def baseline(self, client: str, target: str) -> dict[str, Outcome]:
        """The client's outcomes on the target's baseline, run once per module."""
        name = self.targets[target].baseline
        assert name is not None
        if (client, name) not in self.baseline_outcomes:
            self.baseline_outcomes[client, name] = self.outcomes(client, name)
        return self.baseline_outcomes[client, name]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clients = ensure_clients()
    baselines = []
    service = None
    try:
        baselines = [start_valkey(), start_valkey_cluster()]
        service = start_amr()
        targets = [baseline_target(b) for b in baselines]
        targets += [create_amr_target(service, name) for name in AMR_DATABASES]
        yield World(clients, {t.name: t for t in targets}, tmp_path_factory.mktemp("compat"))
    finally:
        if service is not None:
            service.destroy()
        for b in baselines:
            b.stop()


@pytest.mark.parametrize("client", sorted(RUNS))
@pytest.mark.parametrize("target", ["nocluster", "osscluster", "enterprisecluster"])
def test_common_commands_work_through_amr_as_on_the_engine(world: World, client: str, target: str) -> None:
    if client == "ioredis" and world.clients.node is None:
        pytest.skip("no node on this machine")
    outcomes = world.outcomes(client, target)
    baseline = world.baseline(client, target)
    assert outcomes and baseline, "the script recorded no check (see its log in the output directory)"
    assert "ping" in outcomes and baseline["ping"].status == "passed"
    comparison = compare(
        client,
        target,
        world.targets[target].baseline or "",
        outcomes,
        baseline,
        parse_known(KNOWN.read_text()),
    )
    assert [(f.test, f.outcome.message) for f in comparison.unexplained] == []
