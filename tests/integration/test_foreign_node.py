"""A node amr did not create in a clustered database's cluster, played as the attack it is: an
unprivileged local user starts its own valkey-server in cluster mode, claims slots with a higher
config epoch and ``CLUSTER MEET``s one of the database's nodes over the cluster bus. amr makes every
node forget it, gives the slots back to the database's shards, raises its primaries' epochs above
the attacker's, records a ``repair`` event, and its API says the cluster is not healthy meanwhile.

The keys of the slots the attacker took are deleted by the engine the moment it takes them: the
repair gives the database its slots back, not those keys (keeping other users off the cluster bus is
what prevents that). Keys of the slots it did not take survive.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from amr.logic.keyspace.keyslot import choose_key_slot
from amr.nodes.engine import embedded_server_binary
from tests.integration.amr_service import AmrService, free_port, running_service, wait_until
from tests.integration.ha_load import admin_client

# Where the database's nodes listen for each other (their cluster bus is at port + 10000).
NODE_HOST = "127.0.0.2"
BUS_OFFSET = 10000


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service()


# --- the attacker ------------------------------------------------------------------------------


@dataclass
class Attacker:
    """A valkey-server the test runs as the unprivileged user ``nobody``: not amr's, no password."""

    process: subprocess.Popen[bytes]
    port: int
    client: redis.Redis

    def node_id(self) -> str:
        return str(self.client.execute_command("CLUSTER", "MYID"))

    def join(self, node_port: int, first: int, last: int, epoch: int) -> str:
        """Start over as a new node (a new id), claim slots ``first``-``last`` with config epoch
        ``epoch`` and MEET the database's node at ``node_port``; return the new id."""
        self.client.execute_command("CLUSTER", "RESET", "HARD")
        self.client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        self.client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        self.client.execute_command("CLUSTER", "MEET", NODE_HOST, node_port)
        return self.node_id()


def _free_node_port() -> int:
    """A port free on NODE_HOST whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + BUS_OFFSET < 65536:
            try:
                for p in (port, port + BUS_OFFSET):
                    with socket.socket() as s:
                        s.bind((NODE_HOST, p))
            except OSError:
                continue
            return port
    raise AssertionError("no free port pair for the attacker")


@pytest.fixture
def attacker(service: AmrService) -> Iterator[Attacker]:
    """The attacker's valkey-server, started as ``nobody`` in the network the nodes listen in.

    The nodes run in amr's private network namespace, which no other local user can enter
    (tests/integration/test_isolation.py plays that attack). This second line of defence is tested
    as if one had got in anyway: the test (root) starts the attacker inside the namespace, and talks
    to it over a unix socket."""
    directory = Path(tempfile.mkdtemp(prefix="amr-attacker-"))
    directory.chmod(0o777)
    port = _free_node_port()
    conf = directory / "valkey.conf"
    conf.write_text(
        f'bind {NODE_HOST}\nport {port}\ndir {directory}\nprotected-mode no\nsave ""\n'
        f"appendonly no\ncluster-enabled yes\ncluster-config-file nodes.conf\n"
        f"cluster-node-timeout 5000\ncluster-announce-ip {NODE_HOST}\n"
        f"unixsocket {directory}/attacker.sock\nunixsocketperm 777\n"
    )
    holder = int((service.home / "run" / "netns.pid").read_text())
    conf.chmod(0o644)
    process = subprocess.Popen(
        [
            "nsenter",
            f"--net=/proc/{holder}/ns/net",
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            embedded_server_binary(),
            str(conf),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(
        unix_socket_path=str(directory / "attacker.sock"), decode_responses=True, socket_timeout=5
    )
    try:
        wait_until(client.ping, 10, what="the attacker's valkey-server")
        yield Attacker(process, port, client)
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


# --- what amr's nodes and API say --------------------------------------------------------------


@dataclass(frozen=True)
class OwnNode:
    name: str
    port: int
    socket: str


def _own_nodes(service: AmrService) -> list[OwnNode]:
    nodes = []
    for conf in sorted((service.home / "nodes").glob("*/*/valkey.conf")):
        port = int(re.search(r"^port (\d+)$", conf.read_text(), re.M).group(1))  # type: ignore[union-attr]
        name = conf.parent.name
        nodes.append(OwnNode(name, port, str(service.home / "run" / f"{name}.sock")))
    return nodes


def _cluster_nodes(service: AmrService, node: OwnNode) -> list[list[str]]:
    client = admin_client(service.home, node.socket)
    try:
        return [line.split() for line in str(client.execute_command("CLUSTER", "NODES")).splitlines()]
    finally:
        client.close()


def _ids_known(service: AmrService, node: OwnNode) -> set[str]:
    return {parts[0] for parts in _cluster_nodes(service, node)}


def _myself(service: AmrService, node: OwnNode) -> list[str]:
    return next(p for p in _cluster_nodes(service, node) if "myself" in p[2].split(","))


def _slots_served_by_own(service: AmrService, nodes: list[OwnNode]) -> dict[int, str]:
    """slot -> own node serving it, from each own node's own line."""
    served: dict[int, str] = {}
    for node in nodes:
        for item in _myself(service, node)[8:]:
            if item.startswith("["):
                continue
            low, _, high = item.partition("-")
            for slot in range(int(low), int(high or low) + 1):
                served[slot] = node.name
    return served


def _database(service: AmrService, cluster: str) -> dict[str, Any]:
    response = service.http().get(
        service.cluster_path("rg", cluster) + "/databases/default", params={"api-version": "2025-07-01"}
    )
    response.raise_for_status()
    return dict(response.json()["properties"])


def _events(service: AmrService, cluster: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = service.amr_json(
        "redisenterprise", "database", "events", "--cluster-name", cluster, "-g", "rg"
    )
    return result


def _create(service: AmrService, cluster: str, sku: str) -> tuple[RedisCluster, list[OwnNode]]:
    before = {n.name for n in _own_nodes(service)}
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", cluster, "-g", "rg", "-l", "eastus",
        "--sku", sku, "--clustering-policy", "OSSCluster", "--high-availability", "Disabled",
        "--access-keys-authentication", "Enabled",
    )  # fmt: skip
    props = _database(service, cluster)
    assert props["resourceState"] == "Running"
    client = RedisCluster(
        host="localhost",
        port=props["port"],
        password=service.primary_key(cluster),
        ssl=True,
        ssl_ca_certs=service.ca_file,
        decode_responses=True,
    )
    return client, [n for n in _own_nodes(service) if n.name not in before]


def _fight(
    attacker: Attacker, node_port: int, first: int, last: int, epoch: int
) -> tuple[Callable[[], None], list[str]]:
    """Make the attacker join again and again (a new id and a higher epoch each time) in a thread,
    as an attacker racing amr's repair would; returns a stop function and the ids it used."""
    ids: list[str] = []
    stop = threading.Event()

    def run() -> None:
        n = 0
        while not stop.is_set():
            ids.append(attacker.join(node_port, first, last, epoch + 1000 * n))
            n += 1
            stop.wait(0.5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop_fight() -> None:
        stop.set()
        thread.join(10)

    return stop_fight, ids


def _assert_repaired(
    service: AmrService, cluster: str, nodes: list[OwnNode], attacker_ids: list[str], epoch: int
) -> None:
    def repair_recorded() -> bool:
        events = _events(service, cluster)
        return any(
            e["properties"]["kind"] == "repair" and attacker_ids[-1] in e["properties"]["cause"]
            for e in events
        )

    wait_until(repair_recorded, 30, interval=0.3, what="a repair event naming the attacker's node")
    own_ids = {_myself(service, n)[0] for n in nodes}

    def forgotten() -> bool:
        for node in nodes:
            lines = _cluster_nodes(service, node)
            assert {parts[0] for parts in lines} == own_ids, f"{node.name} knows {lines}"
        return True

    wait_until(forgotten, 30, interval=0.2, what="every own node to forget the attacker")
    served = wait_until(
        lambda: len(s := _slots_served_by_own(service, nodes)) == 16384 and s,
        30, interval=0.2, what="all 16384 slots served by the database's own nodes",
    )  # fmt: skip
    assert set(served.values()) == {n.name for n in nodes}
    for node in nodes:  # the attacker's epoch no longer wins a slot from any own primary
        assert int(_myself(service, node)[6]) > epoch
    props = wait_until(
        lambda: (p := _database(service, cluster))["resourceState"] == "Running" and p,
        20, interval=0.2, what="the database Running again",
    )  # fmt: skip
    assert "not healthy" not in props.get("statusMessage", "")
    assert props["provisioningState"] == "Succeeded"


def _wait_unhealthy_reported(service: AmrService, cluster: str, ids: list[str]) -> dict[str, Any]:
    def reported() -> dict[str, Any] | None:
        props = _database(service, cluster)
        message = props.get("statusMessage", "")
        if props["resourceState"] != "Running" and any(i in message for i in ids):
            return props
        return None

    props: dict[str, Any] = wait_until(reported, 30, interval=0.05, what="the API to report the foreign node")
    return props


def test_a_foreign_node_that_took_every_slot_is_forgotten_and_the_slots_come_back(
    service: AmrService, attacker: Attacker
) -> None:
    client, nodes = _create(service, "one", "Balanced_B0")
    (node,) = nodes
    for i in range(200):
        client.set(f"k{i}", i)

    # The attack: every slot, a far higher epoch, joined over the cluster bus, again and again.
    stop, ids = _fight(attacker, node.port, 0, 16383, 1_000_000)
    try:
        wait_until(lambda: len(ids) >= 1, 10, what="the attacker to join")
        props = _wait_unhealthy_reported(service, "one", ids)
        assert props["resourceState"] == "Updating"
        assert props["provisioningState"] == "Succeeded"
        assert "a node amr did not create" in props["statusMessage"]
    finally:
        stop()
    _assert_repaired(service, "one", nodes, ids, 1_000_000 + 1000 * (len(ids) - 1))

    # The database serves every slot again through its endpoint.
    assert sorted(client.execute_command("CLUSTER SLOTS")) == [(0, 16383)]
    client.set("after", "1")
    assert client.get("after") == "1"


def test_keys_of_the_shard_the_attacker_did_not_take_survive_and_its_old_epoch_wins_nothing(
    service: AmrService, attacker: Attacker
) -> None:
    client, nodes = _create(service, "two", "Balanced_B3")
    assert len(nodes) == 2
    keys = {f"k{i}": choose_key_slot(f"k{i}".encode()) for i in range(400)}
    for key in keys:
        client.set(key, key)
    first_shard = next(n for n in nodes if "-0-" in n.name)
    second_shard = next(n for n in nodes if n is not first_shard)

    # The attacker takes the first shard's slots only.
    epoch = 1_000_000
    stop, ids = _fight(attacker, first_shard.port, 0, 8191, epoch)
    try:
        wait_until(lambda: len(ids) >= 1, 10, what="the attacker to join")
        _wait_unhealthy_reported(service, "two", ids)
    finally:
        stop()
    last_epoch = epoch + 1000 * (len(ids) - 1)
    _assert_repaired(service, "two", nodes, ids, last_epoch)
    assert _slots_served_by_own(service, nodes)[0] == first_shard.name
    assert _slots_served_by_own(service, nodes)[16383] == second_shard.name

    survivors = [k for k, slot in keys.items() if slot >= 8192]
    assert survivors and all(client.get(k) == k for k in survivors)
    # The first shard's keys were deleted by the engine when the attacker took their slots; write
    # them again, then let the attacker come back with the epoch it had: it wins no slot now.
    for key in keys:
        client.set(key, key)
    returning = attacker.join(first_shard.port, 0, 8191, last_epoch)
    _assert_repaired(service, "two", nodes, [returning], last_epoch)
    assert all(client.get(k) == k for k in keys)
