"""Hostile input against the real gateway process (real valkey-server, real TLS, raw sockets).

Each test checks that the gateway stays alive, that a well-behaved client on the same port keeps
getting correct answers during and after, and the audit events where the case has one. Covered
elsewhere, not repeated here: a 1 GB bulk length before AUTH (refused at once while a client on the
same port keeps working), more than 16 KB before AUTH and a silent plain client are in
``test_gateway_security.py::test_auth_phase_limits``; the authentication phase is fuzzed without
sockets in ``tests/unit/test_gateway_authphase.py``.

Memory measured on a 2-core test machine (Python 3, uvloop; VmRSS of the gateway process):
- an idle plain connection: one descriptor (the node is connected on the first bytes) and ~2.5 KB;
- an idle TLS connection after the handshake: ~26 KB (OpenSSL and uvloop's TLS state and buffers);
- a client pipelining GETs of 1 MB and never reading: the gateway holds ~1-1.5 MB for it (its write
  buffer up to the 1 MB high-water mark, then it stops reading the node), whatever the pipeline depth.
"""

from __future__ import annotations

import functools
import os
import random
import resource
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.amr_service import free_port, wait_until
from tests.integration.gateway_harness import (
    PASSWORD,
    Client,
    EnvGateway,
    Node,
    Pki,
    encode,
    make_gateway,
    route,
    start,
)

WHOAMI_A = b"$1\r\na\r\n"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(gw: EnvGateway) -> int:
    assert gw.proc is not None
    return gw.proc.pid


def good_client(port: int, certs: Pki | None = None) -> Client:
    c = Client(port, source="127.0.0.2", tls=certs)
    c.auth()
    return c


def check(c: Client) -> None:
    assert c.call("GET", "whoami") == WHOAMI_A


@pytest.fixture
def gw(pki: Pki) -> Iterator[EnvGateway]:  # noqa: F811
    yield from make_gateway(pki)


@pytest.fixture
def patient_gw(pki: Pki) -> Iterator[EnvGateway]:  # noqa: F811
    # Idle connections must outlive the test: a long authentication deadline.
    yield from make_gateway(pki, AMR_GATEWAY_AUTH_TIMEOUT="60")


def test_random_bytes_plain_and_tls(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    port, tport = free_port(), free_port()
    start(gw, route(port, nodes["a"]), route(tport, nodes["a"], True))
    good, tgood = good_client(port), good_client(tport, pki)
    rng = random.Random(20250601)
    ctx = ssl.create_default_context(cafile=pki.ca)
    sizes = (0, 1, 7, 100, 1500, 16_383, 16_385, 70_000)
    prefixes = (b"", b"*", b"*3\r\n$", b"$", b"AUTH ", b"*2\r\n$4\r\nAUTH\r\n$", b"\x16\x03\x01")
    plain_seen: list[tuple[str, int]] = []
    tls_seen: list[tuple[str, int]] = []
    for rnd in range(6):
        socks: list[socket.socket] = []
        for i in range(16):
            source = f"127.0.3.{rnd * 16 + i + 1}"
            kind = rng.choice(("plain", "tls-raw", "tls"))
            raw = socket.create_connection(
                ("127.0.0.1", port if kind == "plain" else tport), timeout=5, source_address=(source, 0)
            )
            (plain_seen if kind == "plain" else tls_seen).append((source, raw.getsockname()[1]))
            s: socket.socket = raw
            if kind == "tls":
                s = ctx.wrap_socket(raw, server_hostname="localhost")
            payload = rng.choice(prefixes) + rng.randbytes(rng.choice(sizes))
            try:
                s.sendall(payload)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                pass
            socks.append(s)
            if i % 4 == 0:
                check(good)  # during
                check(tgood)
        for s in socks:
            s.close()
    assert gw.alive()
    check(good)
    check(tgood)
    good.close()
    tgood.close()
    # Every junk connection was seen and ended: plain ones admitted then disconnected, TLS ones
    # either failed the handshake or were admitted and disconnected.
    for source, sport in plain_seen:
        gw.wait_event("disconnect", source=source, sourcePort=sport)

    def ended(source: str, sport: int) -> bool:
        events = gw.events(source=source, sourcePort=sport)
        return any(e["event"] in ("tls_failure", "disconnect") for e in events)

    for source, sport in tls_seen:
        wait_until(functools.partial(ended, source, sport), 3.0, what=f"end of {source}:{sport}")
    assert gw.events("auth_success", source="127.0.0.2")
    assert not [e for e in gw.events("auth_success") if e["source"].startswith("127.0.3.")]


def client_hello() -> bytes:
    """The first flight of a real TLS client (its ClientHello record)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_tls_client_hello_cut_off(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    tport = free_port()
    start(gw, route(tport, nodes["a"], True))  # auth_timeout is 1 s in this gateway
    tgood = good_client(tport, pki)
    hello = client_hello()
    assert len(hello) > 100
    cuts = [1, 5, 9, 10, 11, len(hello) // 2, len(hello) - 1]
    socks: list[tuple[socket.socket, str]] = []
    t0 = time.monotonic()
    for i, cut in enumerate(cuts):
        source = f"127.0.6.{i + 1}"
        s = socket.create_connection(("127.0.0.1", tport), timeout=5, source_address=(source, 0))
        s.sendall(hello[:cut])
        socks.append((s, source))
    check(tgood)  # during
    for s, source in socks:
        s.settimeout(3)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 2.5, "not closed within the authentication deadline"
        s.close()
        ev = gw.wait_event("auth_timeout", source=source)
        assert ev["port"] == tport and ev["reason"] == "tls handshake not finished in time"
    assert time.monotonic() - t0 > 0.8
    check(tgood)  # after
    tgood.close()
    assert gw.alive()


# Measured on the test machine: ~2.5 KB of gateway RSS per idle plain connection (25 MB for 10,000).
# Bound with ~50% headroom: 4 KB per connection.
IDLE_CONNECTIONS = 10_000
IDLE_RSS_BOUND_KB = IDLE_CONNECTIONS * 4


def test_ten_thousand_idle_connections(
    patient_gw: EnvGateway,
    nodes: dict[str, Node],  # noqa: F811
) -> None:
    gw = patient_gw
    port = free_port()
    start(gw, route(port, nodes["a"]))
    pid = pid_of(gw)
    good = good_client(port)
    check(good)
    base_fds, base_rss = fd_count(pid), rss_kb(pid)
    socks: list[socket.socket] = []
    try:
        for i in range(IDLE_CONNECTIONS):
            socks.append(
                socket.create_connection(
                    ("127.0.0.1", port), timeout=10, source_address=(f"127.0.7.{i % 250 + 1}", 0)
                )
            )
            if i % 2500 == 0:
                check(good)  # during
        wait_until(lambda: fd_count(pid) >= base_fds + IDLE_CONNECTIONS, 20, what="all connections accepted")
        wait_until(
            lambda: len(gw.events("connect", port=port)) >= IDLE_CONNECTIONS + 2, 10, what="connect events"
        )
        fds, rss = fd_count(pid), rss_kb(pid)
        per_conn = (rss - base_rss) * 1024 / IDLE_CONNECTIONS
        print(
            f"gateway with {IDLE_CONNECTIONS} idle connections: VmRSS {base_rss} KB -> {rss} KB "
            f"({per_conn:.0f} B per connection), descriptors {base_fds} -> {fds}"
        )
        # Lazy upstream: one descriptor per idle connection, none towards the node.
        assert fds - base_fds <= IDLE_CONNECTIONS + 5
        assert rss - base_rss < IDLE_RSS_BOUND_KB
        check(good)
        fresh = good_client(port)
        check(fresh)
        fresh.close()
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: fd_count(pid) <= base_fds + 2, 20, what="all idle connections closed")
    print(f"after closing them: VmRSS {rss_kb(pid)} KB")
    check(good)
    good.close()
    assert gw.alive()


# Measured on the test machine: gateway RSS per idle TLS connection after the handshake is bimodal
# across runs of the same code, ~26 KB or ~50 KB (1,000 of them: +25 MB or +49 MB; the cause is in
# OpenSSL/allocator behaviour, not in the gateway's own objects). Bound with headroom over the
# higher mode: 64 KB per connection.
IDLE_TLS_CONNECTIONS = 1000
IDLE_TLS_RSS_BOUND_KB = IDLE_TLS_CONNECTIONS * 64


def test_idle_tls_connections_memory(
    patient_gw: EnvGateway,
    nodes: dict[str, Node],  # noqa: F811
    pki: Pki,  # noqa: F811
) -> None:
    gw = patient_gw
    tport = free_port()
    start(gw, route(tport, nodes["a"], True))
    pid = pid_of(gw)
    good = good_client(tport, pki)
    check(good)
    base_fds, base_rss = fd_count(pid), rss_kb(pid)
    ctx = ssl.create_default_context(cafile=pki.ca)
    socks: list[socket.socket] = []
    try:
        for i in range(IDLE_TLS_CONNECTIONS):
            raw = socket.create_connection(
                ("127.0.0.1", tport), timeout=10, source_address=(f"127.0.9.{i % 250 + 1}", 0)
            )
            socks.append(ctx.wrap_socket(raw, server_hostname="localhost"))
        wait_until(
            lambda: len(gw.events("connect", port=tport)) >= IDLE_TLS_CONNECTIONS + 1,
            10,
            what="connect events",
        )
        fds, rss = fd_count(pid), rss_kb(pid)
        per_conn = (rss - base_rss) * 1024 / IDLE_TLS_CONNECTIONS
        print(
            f"gateway with {IDLE_TLS_CONNECTIONS} idle TLS connections: VmRSS {base_rss} KB -> {rss} KB "
            f"({per_conn:.0f} B per connection), descriptors {base_fds} -> {fds}"
        )
        assert fds - base_fds <= IDLE_TLS_CONNECTIONS + 5
        assert rss - base_rss < IDLE_TLS_RSS_BOUND_KB
        check(good)
    finally:
        for s in socks:
            s.close()
    check(good)
    good.close()
    assert gw.alive()


# Measured: the gateway holds ~1-1.5 MB for a client that never reads (its write buffer reaches the 1 MB
# high-water mark, plus a read in flight), TLS or not. Bound: 16 MB, far below the 64 MB pipelined.
NEVER_READ_GETS = 64
NEVER_READ_RSS_BOUND_KB = 16 * 1024


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_client_that_never_reads(gw: EnvGateway, nodes: dict[str, Node], pki: Pki, tls: bool) -> None:  # noqa: F811
    port = free_port()
    start(gw, route(port, nodes["a"], tls))
    pid = pid_of(gw)
    certs = pki if tls else None
    good = good_client(port, certs)
    check(good)
    value = b"x" * (1 << 20)
    assert good.call("SET", "big", value) == b"+OK\r\n"
    base_rss = rss_kb(pid)

    hog = Client(port, source="127.0.0.80", tls=certs)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    hog.auth()
    hog.send(encode("GET", "big") * NEVER_READ_GETS)
    expected = NEVER_READ_GETS * (len(value) + 11)
    # Wait until the gateway has stopped moving bytes (flow control holds the rest in the node).
    last = -1

    def settled() -> bool:
        nonlocal last
        now = rss_kb(pid)
        done = now == last
        last = now
        return done

    time.sleep(0.5)
    wait_until(settled, 10, what="gateway memory to settle")
    grown = rss_kb(pid) - base_rss
    print(f"never-reading client ({'tls' if tls else 'plain'}): gateway VmRSS grew {grown} KB")
    assert grown < NEVER_READ_RSS_BOUND_KB
    for _ in range(5):  # others on the same port are unaffected
        check(good)
        assert good.call("STRLEN", "big") == b":1048576\r\n"
    other = good_client(port, certs)
    check(other)
    other.close()
    hog.close()
    ev = gw.wait_event("disconnect", source="127.0.0.80")
    assert ev["bytesOut"] < expected  # most replies never left the node
    check(good)
    good.close()
    assert gw.alive()


# -- out of file descriptors ------------------------------------------------------------------------

FD_LIMIT = 64


class LimitedGateway(EnvGateway):
    """The gateway with RLIMIT_NOFILE lowered to ``FD_LIMIT``."""

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMR_")}
        env.update(self.env)

        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amr.gateway", "--home", str(self.home), "--log-level", "DEBUG"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=lower_limit,
            )


@pytest.fixture
def limited_gw(pki: Pki, tmp_path: Path) -> Iterator[LimitedGateway]:  # noqa: F811
    gw = LimitedGateway(tmp_path / "home", pki, {"AMR_GATEWAY_AUTH_TIMEOUT": "30"})
    try:
        yield gw
    finally:
        gw.stop()
        log = gw.log()
        print(log)
        assert PASSWORD not in log
        assert "Traceback" not in log, log
        assert " ERROR " not in log, log


def test_out_of_descriptors(limited_gw: LimitedGateway, nodes: dict[str, Node]) -> None:  # noqa: F811
    gw = limited_gw
    port = free_port()
    start(gw, route(port, nodes["a"]))
    pid = pid_of(gw)
    good = good_client(port)
    check(good)
    base = fd_count(pid)
    assert base < FD_LIMIT - 20

    # Flood past the limit: the kernel completes the handshakes (backlog); the gateway accepts until
    # it has no descriptor left, then pauses accepting.
    flood = [
        socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(f"127.0.8.{i + 1}", 0))
        for i in range(FD_LIMIT + 20)
    ]
    wait_until(lambda: "out of file descriptors" in gw.log(), 5, what="the exhaustion warning")
    wait_until(lambda: fd_count(pid) >= FD_LIMIT - 1, 5, what="descriptors used up")
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(1.0)
    busy = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    print(f"gateway CPU while out of descriptors: {busy:.0%}")
    assert busy < 0.3, "the gateway spins on the listening socket"
    check(good)  # existing connections keep working

    # An accepted idle connection that now needs a node connection cannot get one: closed, audited.
    accepted = {e["sourcePort"]: e["source"] for e in gw.events("connect", port=port)}
    victim = next(s for s in flood if s.getsockname()[1] in accepted)
    victim.sendall(encode("AUTH", PASSWORD))
    victim.settimeout(3)
    try:
        assert victim.recv(100) == b""
    except ConnectionResetError:
        pass
    gw.wait_event("disconnect", source=victim.getsockname()[0], reason="no_descriptors")
    victim.close()
    flood.remove(victim)
    check(good)

    # A new client waits in the backlog, then is served once others close.
    late = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.90", 0))
    late.sendall(encode("AUTH", PASSWORD) + encode("GET", "whoami"))
    for s in flood:
        s.close()
    late.settimeout(5)
    got = b""
    while got.count(b"\r\n") < 3:
        r, _, _ = select.select([late], [], [], 5)
        assert r, f"no answer after the flood closed, got {got!r}"
        chunk = late.recv(100)
        assert chunk, f"closed, got {got!r}"
        got += chunk
    assert got == b"+OK\r\n" + WHOAMI_A
    late.close()
    check(good)
    good.close()
    assert gw.alive()
    # One warning per burst, not one per failed accept (the listener retried ~10 times a second).
    warnings = [line for line in gw.log().splitlines() if "out of file descriptors" in line]
    assert len(warnings) == 1, warnings
