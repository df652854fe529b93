"""Bounded memory, attacked with only a database key: a client that asks for big replies and never
reads them, and clients that trickle huge commands they never finish, against a real amr (real TLS,
real gateway, real valkey-server nodes). Memory is each process's VmRSS from /proc."""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.amr_service import FOUR_SHARDS, AmrService, running_service, wait_until
from tests.integration.ha_load import admin_client, node_name, routes_of

MB = 1 << 20
VALUE = 50_000_000


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service(FOUR_SHARDS)


@pytest.fixture(scope="module")
def enterprise_cluster(service: AmrService) -> tuple[int, str]:
    """A two-shard EnterpriseCluster database: its port and key."""
    return _create(service, "membound-ec", "Balanced_B3", "EnterpriseCluster")


def _create(service: AmrService, name: str, sku: str, policy: str) -> tuple[int, str]:
    service.amr_json(
        "redisenterprise", "create", "--cluster-name", name, "-g", "rg", "-l", "eastus", "--sku", sku,
        "--access-keys-authentication", "Enabled", "--clustering-policy", policy,
    )  # fmt: skip
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", "rg")
    port, key = db["properties"]["port"], service.primary_key(name)
    wait_until(_client(service, port, key).ping, 30, what=f"{name} answers")
    return port, key


def _client(service: AmrService, port: int, key: str, timeout: float = 60) -> redis.Redis:
    return redis.Redis(
        host="localhost", port=port, password=key, ssl=True, ssl_ca_certs=service.ca_file,
        socket_timeout=timeout,
    )  # fmt: skip


def rss(pid: int) -> int:
    """The process's resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def gateway_pid(service: AmrService) -> int:
    """The (single) gateway worker of this installation."""
    found = []
    for pid in service.pids_under_home():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gateway" in cmdline and not any(b"supervisord" in part for part in cmdline):
            found.append(pid)
    assert len(found) == 1, found
    return found[0]


class PeakRss:
    """Samples a process's VmRSS every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def attacker(service: AmrService, port: int, key: str) -> ssl.SSLSocket:
    """A raw TLS connection, authenticated, with a tiny receive buffer (it will not read)."""
    raw = socket.create_connection(("localhost", port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    context = ssl.create_default_context(cafile=service.ca_file)
    conn = context.wrap_socket(raw, server_hostname="localhost")
    conn.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(key), key.encode()))
    assert conn.recv(5) == b"+OK\r\n"
    return conn


def test_a_client_that_never_reads_big_replies_cannot_grow_the_node_past_its_memory(
    service: AmrService,
) -> None:
    # The review's attack: on a 0.5 GB database, ask 30 times for a 50 MB value and never read.
    # Without limits the node buffered every reply (1.5 GB). Now the engine's client memory is
    # bounded (maxmemory-clients = half of maxmemory, 256 MB here): the node stays under its
    # memory plus a 64 MB margin, and drops the attacker, not the others.
    port, key = _create(service, "membound-b0", "Balanced_B0", "NoCluster")
    client = _client(service, port, key)
    client.set("big", b"v" * VALUE)
    socket_path = routes_of(service.home, port)["target"]
    admin = admin_client(service.home, socket_path)
    pid = service.node_pids()[node_name(socket_path)]
    before = admin.info("stats")
    dropped_before = before["evicted_clients"] + before["client_output_buffer_limit_disconnections"]
    peak = PeakRss(pid)
    conns = []
    try:
        conn = attacker(service, port, key)
        conns.append(conn)
        conn.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 30)

        def dropped() -> bool:
            stats = admin.info("stats")
            return (
                stats["evicted_clients"] + stats["client_output_buffer_limit_disconnections"] > dropped_before
            )

        wait_until(dropped, 60, what="the node drops the client that does not read")
        # Another client of the same database is served meanwhile, and after.
        assert client.get("big") == b"v" * VALUE
        assert client.ping()
    finally:
        high = peak.stop()
        for conn in conns:
            conn.close()
    assert high <= 512 * MB + 64 * MB, f"node peaked at {high / MB:.0f} MB"


def test_running_nodes_get_the_client_limits_back_live(service: AmrService) -> None:
    # A node still running with the engine's defaults (from before the limits, or changed by hand)
    # is given them by the reconciler with CONFIG SET: same process, no restart.
    port, key = _create(service, "membound-live", "Balanced_B0", "NoCluster")
    admin = admin_client(service.home, routes_of(service.home, port)["target"])
    wanted = admin.config_get("maxmemory-clients")["maxmemory-clients"]
    assert wanted == str(256 * MB)
    limit = admin.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    assert limit.startswith(f"normal {256 * MB} {64 * MB} 60 ")
    pid = admin.info("server")["process_id"]
    admin.config_set("maxmemory-clients", "0")
    admin.config_set("client-output-buffer-limit", "normal 0 0 0")
    wait_until(
        lambda: (
            admin.config_get("maxmemory-clients")["maxmemory-clients"] == wanted
            and admin.config_get("client-output-buffer-limit")["client-output-buffer-limit"] == limit
        ),
        60,
        what="the reconciler sets the limits again",
    )
    assert admin.info("server")["process_id"] == pid
    assert _client(service, port, key).ping()


def _flood(conns: list[ssl.SSLSocket], total: int, stop: threading.Event) -> list[int]:
    """Send each connection ``total`` bytes of its never-finished command, 256 KB at a time round
    robin, without reading; return how many bytes each got out before the gateway closed it or the
    send would block for a second (it is paused)."""
    chunk = b"x" * (256 << 10)
    sent = [0] * len(conns)
    live = set(range(len(conns)))
    for conn in conns:
        conn.settimeout(1.0)
    while live and not stop.is_set():
        for i in list(live):
            try:
                conns[i].sendall(chunk)
                sent[i] += len(chunk)
            except (OSError, ssl.SSLError):
                live.discard(i)  # closed, or paused by the gateway (the send timed out)
                continue
            if sent[i] >= total:
                live.discard(i)
    return sent


def test_slow_senders_of_huge_commands_cannot_grow_the_enterprise_cluster_gateway(
    service: AmrService, enterprise_cluster: tuple[int, str]
) -> None:
    # The review's attack: connections that start huge commands and never finish them. The router
    # held each incomplete command up to 64 MB (8 connections: +490 MB on the gateway every database
    # shares). Now a command whose key is known is streamed to its node as it arrives (the node's
    # client memory limits apply there), and one that must be whole before routing (MSET) is held
    # from a 64 MB gateway-wide budget, its sender paused when that is full.
    port, key = enterprise_cluster
    gateway = gateway_pid(service)
    legit = _client(service, port, key)
    legit.set("warm", b"w" * MB)  # the legitimate client's connections exist before the attack
    baseline = rss(gateway)
    peak = PeakRss(gateway)
    stop = threading.Event()
    conns: list[ssl.SSLSocket] = []
    try:
        for i in range(50):
            conn = attacker(service, port, key)
            if i % 2:
                conn.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$400000000\r\n" % (i % 10))
            else:
                conn.sendall(b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$30000000\r\n")
            conns.append(conn)
        sent = _flood(conns, 8 * MB, stop)
        assert sum(sent) > 200 * MB  # the attack did push hundreds of MB at the gateway
        flooded = peak.peak - baseline
        # Bound: the 64 MB budget of held commands, and up to 4 MB per connection (1 MB of an
        # incomplete command of its own and its parser's growth, 1 MB of node write buffer, TLS
        # buffers). Measured: 164 to 184 MB; 981 MB with every command held whole.
        assert flooded <= 64 * MB + 50 * 4 * MB, f"gateway grew {flooded / MB:.0f} MB under the attack"
        # With the attackers still connected (their MSETs holding the budget), a legitimate 100 MB
        # value goes in and comes back through the same endpoint.
        _round_trip_a_big_value(legit)
        assert legit.ping()
    finally:
        stop.set()
        high = peak.stop()
        for conn in conns:
            conn.close()
    # The 100 MB value was streamed both ways (the client is on connections of its own once it sent
    # a big command, and a big reply on those passes through as it arrives): it adds little, where
    # framing it whole cost three to four times its size.
    grown = high - baseline
    assert grown <= 64 * MB + 50 * 4 * MB + 16 * MB, f"gateway grew {grown / MB:.0f} MB"


def _round_trip_a_big_value(client: redis.Redis) -> None:
    """A legitimate 100 MB value set and read back whole through the endpoint."""
    value = os.urandom(100_000_000)
    assert client.set("bigvalue", value)
    same = client.get("bigvalue") == value  # (not in the assertion: pytest would print 100 MB)
    assert same, "the 100 MB value did not come back whole"


def _disconnect_reasons(service: AmrService, source_port: int) -> list[str]:
    """The reasons of the gateway's disconnect events for the connection from ``source_port``."""
    log = service.home / "logs" / "connections.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [
        e.get("reason", "") for e in events if e["event"] == "disconnect" and e["sourcePort"] == source_port
    ]


def test_a_client_that_never_reads_is_closed_before_the_gateway_holds_its_replies(
    service: AmrService, enterprise_cluster: tuple[int, str]
) -> None:
    # Replies to commands already sent over connections shared with other clients keep coming when
    # their client stops reading (the node connection cannot be paused for one client). Before,
    # the gateway queued them all for it: 30 GETs of a 10 MB value left 300 MB in the gateway. Now
    # a client that is not reading while 64 MB of its replies wait is closed.
    port, key = enterprise_cluster
    legit = _client(service, port, key)
    value = os.urandom(10_000_000)
    legit.set("ten", value)
    gateway = gateway_pid(service)
    baseline = rss(gateway)
    peak = PeakRss(gateway)
    conn = attacker(service, port, key)
    try:
        source_port = conn.getsockname()[1]
        conn.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nten\r\n" * 30)
        wait_until(
            lambda: "output_buffer_limit" in _disconnect_reasons(service, source_port),
            60,
            what="the gateway closes the client that does not read",
        )
        assert legit.get("ten") == value  # the others are served, on the same shared connections
    finally:
        high = peak.stop()
        conn.close()
    # Bound: 64 MB of unread replies and the reply that crossed it, each byte held up to three times
    # meanwhile (framed, queued as plain text, encrypted for TLS): measured 149 to 161 MB.
    grown = high - baseline
    assert grown <= 3 * (64 * MB + 10 * MB), f"gateway grew {grown / MB:.0f} MB"


def test_huge_commands_pass_a_spliced_endpoint_without_the_gateway_keeping_them(service: AmrService) -> None:
    # A NoCluster (or OSSCluster) connection is spliced to its node, and the gateway reads each
    # command after authentication to answer CLIENT LIST/INFO/KILL itself. Its parser must not keep
    # a big value while it passes: framing with hiredis alone, one 200 MB SET grew the gateway from
    # 16 MB to 417 MB. Four connections that start 400 MB SETs and send 40 MB each, and a
    # legitimate 100 MB value set and read back, leave the gateway about where it was.
    port, key = _create(service, "membound-splice", "Balanced_B1", "NoCluster")
    gateway = gateway_pid(service)
    legit = _client(service, port, key)
    legit.set("warm", b"w" * MB)
    baseline = rss(gateway)
    peak = PeakRss(gateway)
    stop = threading.Event()
    conns: list[ssl.SSLSocket] = []
    try:
        for i in range(4):
            conn = attacker(service, port, key)
            conn.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$400000000\r\n" % i)
            conns.append(conn)
        sent = _flood(conns, 40 * MB, stop)
        assert sum(sent) >= 160 * MB, sent  # the node took every byte: nothing paused them
        _round_trip_a_big_value(legit)
    finally:
        stop.set()
        high = peak.stop()
        for conn in conns:
            conn.close()
    # Bound: per connection, a parser's hold of an incomplete command (256 KB) and TLS and socket
    # buffers; the 100 MB reply passes through as it arrives. Measured: 6 to 10 MB (205 MB when the
    # parser kept them).
    grown = high - baseline
    assert grown <= 48 * MB, f"gateway grew {grown / MB:.0f} MB"
