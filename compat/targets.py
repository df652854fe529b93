"""What the clients run against: amr's databases (through its TLS endpoints) and the baselines.

One private amr (tests/integration/amr_service.py's AmrService) with
``engine.max_shards_per_database = 4`` serves three caches, high availability Enabled (Azure's
default), access keys Enabled:

    nocluster          Balanced_B1   NoCluster          one shard and its replica, Sentinel
    osscluster         Balanced_B20  OSSCluster         4 shards, cluster clients (per-node ports)
    enterprisecluster  Balanced_B20  EnterpriseCluster  4 shards, one endpoint (the gateway routes)

Each is compared with the engine itself: the standalone ones with ``valkey``, the cluster one with
``valkey-cluster`` (compat/engines.py).
"""

from __future__ import annotations

import contextlib
import random
import socket
from dataclasses import dataclass

from redis.cluster import RedisCluster
from tests.integration.amr_service import FOUR_SHARDS, AmrService, cache_client, wait_until

from compat.engines import Baseline

# target -> (SKU, clustering policy, baseline it is compared with)
AMR_DATABASES = {
    "nocluster": ("Balanced_B1", "NoCluster", "valkey"),
    "osscluster": ("Balanced_B20", "OSSCluster", "valkey-cluster"),
    "enterprisecluster": ("Balanced_B20", "EnterpriseCluster", "valkey"),
}
BASELINES = ("valkey", "valkey-cluster")
NODE_PORTS = 24


@dataclass(frozen=True)
class Target:
    """An endpoint clients connect to: ``host:port`` with ``password``, TLS or not; ``ports`` are
    every port a client of it may be sent to (a cluster's nodes), ``nodes`` how many nodes a cluster
    client finds; ``cluster``: clients use their
    cluster mode; ``baseline``: the target it is compared with (None for a baseline)."""

    name: str
    host: str
    port: int
    password: str
    tls: bool
    ports: tuple[int, ...]
    cluster: bool
    baseline: str | None
    ca_file: str | None = None
    nodes: int = 1  # the nodes a cluster client finds (primaries and replicas)


def baseline_target(base: Baseline) -> Target:
    return Target(
        name=base.name,
        host="127.0.0.1",
        port=base.port,
        password=base.password,
        tls=False,
        ports=tuple(base.ports),
        cluster=base.name == "valkey-cluster",
        baseline=None,
        nodes=len(base.ports),
    )


def free_port_block(n: int, rng: random.Random | None = None) -> int:
    """The first of ``n`` consecutive ports that are free now, below the integration tests' blocks
    (20000 up) and the ephemeral range (32768 up)."""
    rng = rng or random.Random()
    for _ in range(200):
        start = rng.randrange(12000, 20000 - n)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(start, start + n):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise RuntimeError(f"no {n} consecutive free ports between 12000 and 20000")


def start_amr() -> AmrService:
    """A private amr with four shards per database at most, and the resource group ``rg``. Its
    node ports (one per node of a clustered database, replicas too) get a range of their own: the
    harness' ten are too few for two 4-shard databases with replicas."""
    first = free_port_block(NODE_PORTS)
    ranges = {
        "AMR_GATEWAY_NODE_PORT_RANGE_START": str(first),
        "AMR_GATEWAY_NODE_PORT_RANGE_END": str(first + NODE_PORTS - 1),
    }
    service = AmrService({**FOUR_SHARDS, **ranges}).start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
    except BaseException:
        service.destroy()
        raise
    return service


def _cluster_ports(port: int, key: str, ca_file: str, expected: int) -> list[int]:
    """The node ports a cluster client of the database finds, once there are ``expected``."""
    cluster = RedisCluster(host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=ca_file)
    try:
        ports = [int(n.port) for n in cluster.get_nodes()]
    finally:
        cluster.close()
    return ports if len(ports) == expected else []


def create_amr_target(service: AmrService, name: str) -> Target:
    """Create the cache ``name`` of AMR_DATABASES and wait until its database answers."""
    sku, policy, baseline = AMR_DATABASES[name]
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
        "--high-availability", "Enabled",
    )  # fmt: skip
    client = cache_client(service, name)
    key = service.primary_key(name)
    try:
        port = int(client.connection_pool.connection_kwargs["port"])
        nodes: list[int] = []
        if policy == "OSSCluster":
            db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
            shards = int(db["properties"].get("shardCount", 1))
            # Every primary and replica, as a cluster client finds them (announced through the
            # gateway); replicas may join after the create has succeeded.
            nodes = wait_until(lambda: _cluster_ports(port, key, service.ca_file, 2 * shards), 60, interval=0.5,
                               what=f"{name}: {2 * shards} nodes announced")  # fmt: skip
    finally:
        client.close()
    return Target(
        name=name,
        host="localhost",
        port=port,
        password=key,
        tls=True,
        ports=tuple(dict.fromkeys([port, *nodes])),
        cluster=policy == "OSSCluster",
        baseline=baseline,
        ca_file=service.ca_file,
        nodes=max(1, len(nodes)),
    )
