"""CLIENT LIST, CLIENT INFO and CLIENT KILL through amr's TLS endpoints, with real redis-py clients,
on NoCluster (HA: a replica replicates from the primary), EnterpriseCluster (two shards) and an
OSSCluster node port, served by two gateway workers (so a client's list covers both).

Each client appears at its own TCP source port (``addr=``) and the public port it reached
(``laddr=``); a kill by address, id or type closes exactly the clients it names, never the caller
unless told to and never amr's own connections (its health checks, its gateway connections, the
replication link), which tenants can neither see nor close."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.amr_service import AmrService, running_service, wait_until
from tests.integration.ha_load import admin_client

CACHES = {
    # name: (sku, clustering policy, high availability)
    "noc": ("Balanced_B0", "NoCluster", "Enabled"),
    "ec": ("Balanced_B3", "EnterpriseCluster", "Disabled"),
    "oss": ("Balanced_B0", "OSSCluster", "Enabled"),
}


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service({"AMR_GATEWAY_WORKERS": "2"})


@pytest.fixture(scope="module")
def caches(service: AmrService) -> dict[str, int]:
    """Every cache of the module, created at once; name -> database port."""
    for name, (sku, policy, ha) in CACHES.items():
        service.amr(
            "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
            "--access-keys-authentication", "Enabled", "--clustering-policy", policy, "--high-availability", ha,
            "--no-wait", check=True,
        )  # fmt: skip
    ports = {}
    for name in CACHES:

        def created(n: str = name) -> dict[str, object] | None:
            db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", n, "-g", "rg")
            return db if db["properties"]["provisioningState"] == "Succeeded" else None

        db = wait_until(created, 180, interval=0.5, what=f"{name} created")
        ports[name] = db["properties"]["port"]
    return ports


class Tenant:
    """One client connection of a cache (redis-py over TLS), and the port it connects from."""

    def __init__(self, service: AmrService, cache: str, port: int, protocol: int = 2) -> None:
        self.client = redis.Redis(
            "localhost", port, password=service.primary_key(cache), ssl=True, ssl_ca_certs=service.ca_file,
            decode_responses=True, single_connection_client=True, socket_timeout=10, protocol=protocol,
            retry=Retry(NoBackoff(), 0),  # a closed connection stays closed: no reconnecting
        )  # fmt: skip
        wait_until(self.client.ping, 30, what=f"{cache} answers")
        self.port = self.client.connection._sock.getsockname()[1]  # type: ignore[union-attr]
        self.addr = f"127.0.0.1:{self.port}"

    def run(self, *args: object) -> object:
        return self.client.execute_command(*args)

    def listing(self, *args: object) -> dict[str, dict[str, str]]:
        """CLIENT LIST (with ``args``) by addr: each line's fields."""
        text = self.run("CLIENT", "LIST", *args)
        assert isinstance(text, str)
        lines = [dict(w.split("=", 1) for w in line.split()) for line in text.splitlines() if line]
        return {line["addr"]: line for line in lines}

    def alive(self) -> bool:
        """Whether this very connection is still open (a closed one is not opened again)."""
        try:
            return bool(self.client.ping()) and self.client.connection._sock is not None  # type: ignore[union-attr]
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def tenants(service: AmrService, caches: dict[str, int]) -> Iterator[dict[str, list[Tenant]]]:
    """Four connections to each cache."""
    opened = {name: [Tenant(service, name, port) for _ in range(4)] for name, port in caches.items()}
    yield opened
    for group in opened.values():
        for tenant in group:
            tenant.close()


@pytest.mark.parametrize("cache", ["noc", "ec"])
def test_client_list_shows_every_client_at_its_own_source_port(
    cache: str, caches: dict[str, int], tenants: dict[str, list[Tenant]]
) -> None:
    mine = tenants[cache]
    listed = mine[0].listing()
    for tenant in mine:
        assert tenant.addr in listed, (tenant.addr, sorted(listed))
        assert listed[tenant.addr]["laddr"].endswith(f":{caches[cache]}")
    assert all(addr.startswith("127.0.0.1:") for addr in listed), sorted(listed)
    assert not any(line["user"].startswith("amr-") for line in listed.values())
    # Its own line: the same in CLIENT INFO, with the id CLIENT ID gives.
    info = dict(w.split("=", 1) for w in str(mine[1].run("CLIENT", "INFO")).split())
    assert info["addr"] == mine[1].addr and info["cmd"] == "client|info"
    assert int(info["id"]) == mine[1].client.client_id()
    assert listed[mine[1].addr]["id"] == info["id"]
    assert listed[mine[0].addr]["cmd"] == "client|list"
    # Names and library labels, as the engine keeps them (EnterpriseCluster: the gateway does).
    assert mine[2].client.client_setname("worker-2") is True and mine[2].client.client_getname() == "worker-2"
    assert mine[0].listing()[mine[2].addr]["name"] == "worker-2"
    assert mine[0].listing()[mine[0].addr]["lib-name"] == "redis-py"


@pytest.mark.parametrize("cache", ["noc", "ec"])
def test_client_kill_by_address_kills_that_client_only(cache: str, tenants: dict[str, list[Tenant]]) -> None:
    a, b, c, d = tenants[cache]
    assert a.run("CLIENT", "KILL", "ADDR", b.addr, "SKIPME", "yes") == 1
    wait_until(lambda: not b.alive(), 5, what="B closed")
    assert a.alive() and c.alive() and d.alive()
    # The old form: +OK, and only the client it names.
    assert a.run("CLIENT", "KILL", c.addr) in (True, "OK")
    wait_until(lambda: not c.alive(), 5, what="C closed")
    assert a.alive() and d.alive()
    with pytest.raises(redis.ResponseError, match="No such client"):
        a.run("CLIENT", "KILL", "127.0.0.1:1")
    # By id, as CLIENT LIST shows it.
    assert a.run("CLIENT", "KILL", "ID", a.listing()[d.addr]["id"]) == 1
    wait_until(lambda: not d.alive(), 5, what="D closed")
    assert a.alive()


@pytest.mark.parametrize("cache", ["noc", "ec"])
def test_skipme_and_killing_oneself(cache: str, tenants: dict[str, list[Tenant]]) -> None:
    a, b, c, d = tenants[cache]
    assert a.run("CLIENT", "KILL", "ADDR", a.addr) == 0  # SKIPME yes by default
    assert a.alive()
    assert a.run("CLIENT", "KILL", "LADDR", a.listing()[a.addr]["laddr"], "SKIPME", "yes") >= 3
    wait_until(lambda: not (b.alive() or c.alive() or d.alive()), 5, what="the other three closed")
    assert a.alive()
    assert a.run("CLIENT", "KILL", "ADDR", a.addr, "SKIPME", "no") == 1
    wait_until(lambda: not a.alive(), 5, what="A closed")


@pytest.mark.parametrize("cache", ["noc", "ec"])
def test_the_engines_errors_for_bad_filters(cache: str, tenants: dict[str, list[Tenant]]) -> None:
    a = tenants[cache][0]
    with pytest.raises(redis.ResponseError, match="Unknown client type 'bogus'"):
        a.run("CLIENT", "KILL", "TYPE", "bogus")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        a.run("CLIENT", "LIST", "ID", "abc")
    assert a.listing("TYPE", "pubsub") == {}
    assert set(a.listing("ID", a.listing()[a.addr]["id"])) == {a.addr}


def test_amr_connections_are_neither_listed_nor_killed(
    service: AmrService, tenants: dict[str, list[Tenant]]
) -> None:
    a = tenants["noc"][0]
    (primary,) = [s for s in _node_sockets(service, "noc") if _role(service, s) == "master"]
    # A connection of amr's own (as amr-admin, like the control plane's), and the replica's link.
    witness = admin_client(service.home, primary)
    witness_id = witness.client_id()
    replication = _ids_of(witness, "amr-replication")
    assert replication, "the replica's connection to its primary"
    assert not {u for line in a.listing().values() if (u := line["user"]).startswith("amr-")}
    for filters in (
        ("USER", "amr-admin"),
        ("USER", "amr-replication"),
        ("TYPE", "replica"),
        ("TYPE", "master"),
    ):
        assert a.run("CLIENT", "KILL", *filters) == 0, filters
    assert a.run("CLIENT", "KILL", "ID", witness_id) == 0
    assert a.run("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 3
    assert witness.client_id() == witness_id  # the same connection, still open
    assert _ids_of(witness, "amr-replication") == replication
    witness.close()
    # The tenant's own user may not list or kill on the engine: only the gateway does, for it.
    node = redis.Redis(unix_socket_path=primary, password=service.primary_key("noc"))
    for command in (("CLIENT", "LIST"), ("CLIENT", "KILL", "TYPE", "replica")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            node.execute_command(*command)
    node.close()


def test_oss_cluster_node_ports_list_the_clients_of_their_node(
    service: AmrService, caches: dict[str, int], tenants: dict[str, list[Tenant]]
) -> None:
    database_port = caches["oss"]
    first = tenants["oss"][0]
    slots = first.run("CLUSTER", "SLOTS")
    assert isinstance(slots, list)
    node_port = int(slots[0][2][1])
    on_node = [Tenant(service, "oss", node_port) for _ in range(2)]
    try:
        listed = on_node[0].listing()
        for tenant in on_node:
            assert listed[tenant.addr]["laddr"].endswith(f":{node_port}")
        # The database port reaches the same node: its clients are that node's clients too.
        if node_port != database_port:
            assert any(line["laddr"].endswith(f":{database_port}") for line in listed.values())
        assert on_node[0].run("CLIENT", "KILL", "ADDR", on_node[1].addr) == 1
        wait_until(lambda: not on_node[1].alive(), 5, what="closed")
        assert on_node[0].alive() and first.alive()
    finally:
        for tenant in on_node:
            tenant.close()


def test_inside_multi_in_a_pipeline_and_over_resp3(
    service: AmrService, caches: dict[str, int], tenants: dict[str, list[Tenant]]
) -> None:
    a, b = tenants["noc"][:2]
    pipe = a.client.pipeline(transaction=True)
    pipe.set("k", "v").execute_command("CLIENT", "LIST").get("k")
    assert_ok, listing, value = pipe.execute()
    assert assert_ok is True and value == "v" and b.addr in listing
    pipe = a.client.pipeline(transaction=False)
    pipe.get("k").execute_command("CLIENT", "INFO").echo("after")
    got, info, after = pipe.execute()  # on a connection of the pool's
    assert got == "v" and after == "after"
    assert info.startswith("id=") and "cmd=client|info" in info and "addr=127.0.0.1:" in info
    resp3 = Tenant(service, "noc", caches["noc"], protocol=3)
    try:
        assert resp3.addr in resp3.listing() and f"addr={resp3.addr}" in str(resp3.run("CLIENT", "INFO"))
    finally:
        resp3.close()


class Raw:
    """A hand-driven TLS connection to a cache, authenticated: bytes in, bytes out."""

    def __init__(self, service: AmrService, cache: str, port: int) -> None:
        ctx = ssl.create_default_context(cafile=service.ca_file)
        raw = socket.create_connection(("localhost", port), timeout=5)
        self.addr = f"127.0.0.1:{raw.getsockname()[1]}"
        self.conn = ctx.wrap_socket(raw, server_hostname="localhost")
        self.conn.sendall(f"AUTH {service.primary_key(cache)}\r\n".encode())
        assert self.read_until(b"+OK\r\n") == b"+OK\r\n"

    def read_until(self, end: bytes) -> bytes:
        got = b""
        while not got.endswith(end):
            chunk = self.conn.recv(65536)
            if not chunk:
                break
            got += chunk
        return got

    def close(self) -> None:
        self.conn.close()


def test_a_subscribed_resp2_client_gets_the_engines_refusal(
    caches: dict[str, int], service: AmrService
) -> None:
    raw = Raw(service, "noc", caches["noc"])
    try:
        raw.conn.sendall(b"SUBSCRIBE ch\r\nCLIENT LIST\r\nPING\r\n")
        got = raw.read_until(b"$0\r\n\r\n")  # PING's answer in pub/sub mode: [pong, ""]
        assert b"-ERR Can't execute 'client|list'" in got and got.index(b"client|list") < got.index(b"pong")
    finally:
        raw.close()


def test_typed_split_and_replies_off(
    caches: dict[str, int], service: AmrService, tenants: dict[str, list[Tenant]]
) -> None:
    """An inline command typed into a terminal, a command arriving a byte at a time behind a big one,
    and a kill under CLIENT REPLY OFF (it happens; nothing is answered)."""
    victim = tenants["noc"][1]
    raw = Raw(service, "noc", caches["noc"])
    try:
        raw.conn.sendall(b"client info\r\n")
        assert f"addr={raw.addr} ".encode() in raw.read_until(b"\n\r\n")
        big = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$200000\r\n" + b"v" * 200000 + b"\r\n"
        listing = b"*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n"
        raw.conn.sendall(big + listing[:7])
        for i in range(7, len(listing)):
            raw.conn.sendall(listing[i : i + 1])
        got = raw.read_until(b"\n\r\n")
        assert got.startswith(b"+OK\r\n$") and victim.addr.encode() in got
        raw.conn.sendall(
            b"CLIENT REPLY OFF\r\nCLIENT KILL ADDR "
            + victim.addr.encode()
            + b"\r\nCLIENT REPLY ON\r\nPING\r\n"
        )
        assert raw.read_until(b"+PONG\r\n") == b"+OK\r\n+PONG\r\n"
        wait_until(lambda: not victim.alive(), 5, what="the victim closed")
    finally:
        raw.close()


def test_an_internal_user_cannot_log_in_after_authenticating(
    caches: dict[str, int], tenants: dict[str, list[Tenant]]
) -> None:
    a = tenants["noc"][0]
    with pytest.raises(redis.AuthenticationError):
        a.run("AUTH", "amr-admin", "whatever")
    assert "user=default" in str(a.run("CLIENT", "INFO"))


def test_clients_of_both_gateway_workers_are_listed(service: AmrService, caches: dict[str, int]) -> None:
    many = [Tenant(service, "noc", caches["noc"]) for _ in range(12)]
    try:
        logs = service.home / "logs"
        sources = [
            _audited_ports(logs / name, caches["noc"])
            for name in ("connections.jsonl", "connections-1.jsonl")
        ]
        mine = {t.port for t in many}
        assert all(mine & s for s in sources), "all connections went to one worker"
        listed = many[0].listing()
        assert {t.addr for t in many} <= set(listed)
        assert many[0].run("CLIENT", "KILL", "ADDR", many[-1].addr) == 1
        wait_until(lambda: not many[-1].alive(), 5, what="closed on the other worker")
    finally:
        for tenant in many:
            tenant.close()


def _node_sockets(service: AmrService, cache: str) -> list[str]:
    routes = json.loads((service.home / "gateway" / "routes.json").read_text())["routes"]
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", cache, "-g", "rg")
    (route,) = [r for r in routes if r["port"] == db["properties"]["port"]]
    return list(route.get("candidates") or [route["target"]])


def _role(service: AmrService, node_socket: str) -> str:
    admin = admin_client(service.home, node_socket)
    try:
        return str(admin.execute_command("ROLE")[0])
    finally:
        admin.close()


def _ids_of(admin: redis.Redis, user: str) -> set[str]:
    """Engine ids of a node's connections logged in as ``user``."""
    text = admin.execute_command("CLIENT", "LIST")
    lines = [dict(w.split("=", 1) for w in line.split()) for line in str(text).splitlines() if line]
    return {line["id"] for line in lines if line["user"] == user}


def _audited_ports(path: Path, port: int) -> set[int]:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "connect" and event.get("port") == port:
            out.add(int(event["sourcePort"]))
    return out
