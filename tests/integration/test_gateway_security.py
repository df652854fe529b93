"""Gateway security with real processes: bind addresses, firewall, connection limits, the
authentication phase, brute-force protection, TLS failures and the connection audit log.

Different clients come from different loopback source addresses (all of 127/8 is local on Linux).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

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
    run_nopass_valkey,
    start,
)


@pytest.fixture
def gw(pki: Pki) -> Iterator[EnvGateway]:  # noqa: F811
    yield from make_gateway(pki)


def test_binds_every_address(gw: EnvGateway, nodes: dict[str, Node]) -> None:  # noqa: F811
    port = free_port()
    start(gw, route(port, nodes["a"]))
    for host in ("127.0.0.1", "127.0.0.3"):
        c = Client(port, host=host)
        c.auth()
        assert c.call("GET", "whoami") == b"$1\r\na\r\n"
        c.close()
    ev = gw.wait_event("auth_success", source="127.0.0.1")
    assert ev["port"] == port and ev["databaseId"] == "db-a"


def test_firewall_allow_deny_and_live_change(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    port, tport = free_port(), free_port()
    allow = (("127.0.0.5", "127.0.0.6"),)
    start(
        gw,
        route(port, nodes["a"], allowed_sources=allow),
        route(tport, nodes["a"], True, allowed_sources=allow),
    )

    denied = Client(port, source="127.0.0.7")
    assert denied.closed_by_peer(1.0) == b""
    gw.wait_event("firewall_deny", source="127.0.0.7", port=port)
    # On a TLS port the refusal comes before the handshake: not a single byte is sent.
    raw = socket.create_connection(("127.0.0.1", tport), timeout=5, source_address=("127.0.0.7", 0))
    raw.settimeout(2)
    try:
        assert raw.recv(100) == b""
    except ConnectionResetError:
        pass
    raw.close()
    gw.wait_event("firewall_deny", source="127.0.0.7", port=tport)

    c5, c6 = Client(port, source="127.0.0.5"), Client(port, source="127.0.0.6")
    t6 = Client(tport, source="127.0.0.6", tls=pki)
    for c in (c5, c6, t6):
        c.auth()
        assert c.call("PING") == b"+PONG\r\n"

    start_listeners = gw.log().count(f"listening on 127.0.0.1,127.0.0.3 port {port}")
    gw.set_routes(
        route(port, nodes["a"], allowed_sources=(("127.0.0.6", "127.0.0.6"),)),
        route(tport, nodes["a"], True, allowed_sources=(("127.0.0.6", "127.0.0.6"),)),
    )
    t0 = time.monotonic()
    assert c5.closed_by_peer(1.5) == b""
    assert time.monotonic() - t0 < 1.0
    assert c6.call("PING") == b"+PONG\r\n"  # the same socket keeps working
    assert t6.call("PING") == b"+PONG\r\n"
    ev = gw.wait_event("disconnect", source="127.0.0.5", reason="firewall")
    assert ev["bytesIn"] > 0 and ev["bytesOut"] > 0 and ev["durationMs"] >= 0
    # New connections follow the new rule; the listener was updated in place, not rebuilt.
    assert Client(port, source="127.0.0.5").closed_by_peer(1.0) == b""
    assert gw.log().count(f"listening on 127.0.0.1,127.0.0.3 port {port}") == start_listeners
    for c in (c6, t6):
        c.close()


def test_connection_limit(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    port, tport = free_port(), free_port()
    # Two databases (the limit is per database, over all its routes: see the next test).
    start(
        gw,
        route(port, nodes["b"], max_connections=3),
        replace(route(tport, nodes["b"], True, max_connections=1), database_id="db-b-tls"),
    )
    clients = [
        Client(port, source="127.0.0.1"),
        Client(port, source="127.0.0.3"),
        Client(port, host="127.0.0.3"),
    ]
    for c in clients:
        c.auth()
    fourth = Client(port, source="127.0.0.4")
    assert fourth.closed_by_peer() == b"-ERR max number of clients reached\r\n"
    gw.wait_event("limit_deny", source="127.0.0.4", port=port)
    for c in clients:
        assert c.call("PING") == b"+PONG\r\n"
    clients.pop().close()

    def slot_free() -> bool:
        c = Client(port, source="127.0.0.4")
        try:
            c.auth()
            return c.call("PING") == b"+PONG\r\n"
        finally:
            c.close()

    wait_until(slot_free, 2.0, what="a freed slot")
    for c in clients:
        c.close()

    # TLS: the refusal is readable after the handshake.
    first = Client(tport, tls=pki)
    first.auth()
    second = Client(tport, tls=pki)
    assert second.closed_by_peer() == b"-ERR max number of clients reached\r\n"
    assert first.call("PING") == b"+PONG\r\n"
    first.close()


def test_connection_limit_counts_all_routes_of_a_database(
    gw: EnvGateway,
    nodes: dict[str, Node],  # noqa: F811
) -> None:
    # An OSSCluster database: a database port and a port per node, one limit for all of them.
    dbport, n1, n2, other = free_port(), free_port(), free_port(), free_port()
    start(
        gw,
        route(dbport, nodes["a"], max_connections=3),
        route(n1, nodes["a"], max_connections=3),
        replace(route(n2, nodes["b"], max_connections=3), database_id="db-a"),
        replace(route(other, nodes["a"], max_connections=3), database_id="db-other"),
    )
    clients = [Client(dbport, source="127.0.0.70"), Client(n1, source="127.0.0.71")]
    clients.append(Client(n2, source="127.0.0.72"))
    for c in clients:
        c.auth()
    for port, source in ((dbport, "127.0.0.73"), (n1, "127.0.0.74"), (n2, "127.0.0.75")):
        assert Client(port, source=source).closed_by_peer() == b"-ERR max number of clients reached\r\n"
        gw.wait_event("limit_deny", source=source, port=port)
    c = Client(other, source="127.0.0.76")  # another database has its own count
    c.auth()
    c.close()
    clients.pop(0).close()

    def slot_free() -> bool:
        c = Client(n2, source="127.0.0.77")
        try:
            c.auth()
            return c.call("PING") == b"+PONG\r\n"
        finally:
            c.close()

    wait_until(slot_free, 2.0, what="a slot freed on another port of the database")
    for c in clients:
        assert c.call("PING") == b"+PONG\r\n"
        c.close()


def test_auth_wrong_then_right_pipelined_and_hello(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    port, tport = free_port(), free_port()
    start(gw, route(port, nodes["a"]), route(tport, nodes["a"], True))
    c = Client(port, source="127.0.0.10")
    assert c.call("PING").startswith(b"-NOAUTH")
    # Commands the engine runs before AUTH do not end the authentication phase.
    assert c.call("RESET") == b"+RESET\r\n"
    assert c.call("HELLO", "2").startswith(b"-NOAUTH")
    assert c.call("AUTH", "wrong").startswith(b"-WRONGPASS")
    assert c.call("AUTH", "wrong").startswith(b"-WRONGPASS")
    assert c.call("AUTH", "wrong").startswith(b"-WRONGPASS")  # the 3rd failure blocks the source
    assert c.closed_by_peer() == b""
    c = Client(port, source="127.0.0.13")
    assert c.call("RESET") == b"+RESET\r\n"
    assert c.call("AUTH", "wrong").startswith(b"-WRONGPASS")
    c.auth()
    assert c.call("PING") == b"+PONG\r\n"
    c.close()
    assert gw.events("auth_success", source="127.0.0.10") == []
    ev = gw.wait_event("auth_failure", source="127.0.0.10")
    assert ev["reason"] == "WRONGPASS"
    gw.wait_event("auth_success", source="127.0.0.13")

    # AUTH, SET and GET in one packet.
    p = Client(tport, source="127.0.0.11", tls=pki)
    p.send(encode("AUTH", PASSWORD) + encode("SET", "pk", "pv") + encode("GET", "pk"))
    assert p.replies(3) == [b"+OK\r\n", b"+OK\r\n", b"$2\r\npv\r\n"]
    p.close()

    # HELLO 3 AUTH, then RESP3 traffic; and redis-py doing the same.
    h = Client(tport, source="127.0.0.12", tls=pki)
    hello = h.call("HELLO", "3", "AUTH", "default", PASSWORD)
    assert hello.startswith(b"%") and b"proto" in hello
    assert h.call("PING") == b"+PONG\r\n"
    h.close()
    r = redis.Redis(
        host="localhost", port=tport, password=PASSWORD, ssl=True, ssl_ca_certs=pki.ca, protocol=3
    )
    assert r.set("r3", "v") and r.get("r3") == b"v"
    r.close()


def test_auth_phase_limits(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    port, tport = free_port(), free_port()
    start(gw, route(port, nodes["a"]), route(tport, nodes["a"], True))
    good = Client(port, source="127.0.0.20")
    good.auth()

    # A 1 GB bulk length before AUTH is refused at once, without waiting for the bytes.
    huge = Client(port, source="127.0.0.21")
    t0 = time.monotonic()
    huge.send(b"*1\r\n$1073741824\r\n")
    assert huge.closed_by_peer(1.0).startswith(b"-ERR")
    assert time.monotonic() - t0 < 0.5
    gw.wait_event("buffer_limit", source="127.0.0.21")
    assert good.call("PING") == b"+PONG\r\n"

    # More than 16 KB of junk before AUTH: closed.
    junk = Client(port, source="127.0.0.22")
    try:
        junk.send(b"x" * 20_000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    junk.closed_by_peer(1.0)
    gw.wait_event("buffer_limit", source="127.0.0.22")
    lines = Client(port, source="127.0.0.23")  # many complete junk commands: pending bytes count too
    try:
        lines.send(b"JUNK xxxxxxxxxxxxxxxx\r\n" * 1000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    lines.closed_by_peer(1.0)
    gw.wait_event("buffer_limit", source="127.0.0.23")
    noise = Client(port, source="127.0.0.24")
    try:
        noise.send(os.urandom(20_000))
    except (BrokenPipeError, ConnectionResetError):
        pass
    noise.closed_by_peer(1.0)

    # Silent clients are closed after auth_timeout (1 s here): plain, and TLS stuck in its hello.
    idle = Client(port, source="127.0.0.25")
    t0 = time.monotonic()
    assert idle.closed_by_peer(3.0) == b""
    assert 0.8 < time.monotonic() - t0 < 2.5
    gw.wait_event("auth_timeout", source="127.0.0.25")
    stuck = socket.create_connection(("127.0.0.1", tport), timeout=5, source_address=("127.0.0.26", 0))
    stuck.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello cut off
    stuck.settimeout(3)
    t0 = time.monotonic()
    try:
        assert stuck.recv(100) == b""
    except ConnectionResetError:
        pass
    assert 0.8 < time.monotonic() - t0 < 2.5
    stuck.close()
    ev = gw.wait_event("auth_timeout", source="127.0.0.26")
    assert ev["port"] == tport

    assert good.call("PING") == b"+PONG\r\n"  # authenticated clients have no deadline
    good.close()
    assert gw.alive()


# valkey's Tcl suite (tests/unit/protocol.tcl, "Protocol desync regression test"): a connection that
# has not authenticated sends one of these, then "payload" until the server closes it, and expects a
# "Protocol error" line. What the engine itself answers (after its 64 KiB inline limit):
DESYNC = [
    (b"\x00", b"-ERR Protocol error: too big inline request\r\n"),
    (b"*\x00", b"-ERR Protocol error: too big mbulk count string\r\n"),
    (b"$\x00", b"-ERR Protocol error: too big inline request\r\n"),
]


def desync(client: Client, seq: bytes) -> bytes:
    """Send ``seq``, then "payload" until the gateway answers or stops reading (the Tcl test writes
    until a write fails); return what it answered before closing. Non-blocking, so that TLS records
    that are not data (1.3 session tickets) neither stop the writes nor count as the answer."""
    import select

    sock = client.sock
    sock.sendall(seq)
    sock.setblocking(False)
    got, writing = b"", True
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not got.endswith(b"\r\n"):
        select.select([sock], [sock] if writing else [], [], 0.05)
        try:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
            continue
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (ConnectionResetError, ssl.SSLError):
            break
        if writing:
            try:
                sock.send(b"payload")
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                writing = False
    return got


def test_protocol_desync_gets_the_engines_error_and_the_gateway_lives(
    gw: EnvGateway,
    nodes: dict[str, Node],
    pki: Pki,  # noqa: F811
) -> None:
    port, tport = free_port(), free_port()
    start(gw, route(port, nodes["a"]), route(tport, nodes["a"], True))
    good = Client(tport, source="127.0.0.30", tls=pki)
    good.auth()
    source = 30
    for seq, engine_says in DESYNC:
        for p, tls in ((port, None), (tport, pki)):
            source += 1
            client = Client(p, source=f"127.0.0.{source}", tls=tls)
            assert desync(client, seq) == engine_says, (seq, p)
            client.close()
            ev = gw.wait_event("protocol_error", source=f"127.0.0.{source}")
            assert ev["port"] == p
            assert good.call("PING") == b"+PONG\r\n"
    good.close()
    assert gw.alive()


def test_brute_force_blocks_source_for_cooldown(gw: EnvGateway, nodes: dict[str, Node]) -> None:  # noqa: F811
    port = free_port()
    start(gw, route(port, nodes["a"]))
    attacker = Client(port, source="127.0.0.30")
    assert attacker.call("AUTH", "guess1").startswith(b"-WRONGPASS")
    assert attacker.call("AUTH", "guess2").startswith(b"-WRONGPASS")
    attacker.send(encode("AUTH", "guess3"))
    assert attacker.closed_by_peer().startswith(b"-WRONGPASS")  # the third failure closes it
    assert Client(port, source="127.0.0.30").closed_by_peer(1.0) == b""
    gw.wait_event("auth_blocked", source="127.0.0.30")
    assert len(gw.events("auth_failure", source="127.0.0.30")) == 3

    other = Client(port, source="127.0.0.31")
    other.auth()
    assert other.call("PING") == b"+PONG\r\n"
    other.close()

    def works_again() -> bool:
        c = Client(port, source="127.0.0.30")
        try:
            c.auth()
            return True
        finally:
            c.close()

    time.sleep(1.0)
    assert not port_open_from(port, "127.0.0.30")
    wait_until(works_again, 3.0, what="cooldown over")


def port_open_from(port: int, source: str) -> bool:
    c = Client(port, source=source)
    try:
        c.auth()
        return True
    except (ConnectionError, OSError):
        return False
    finally:
        c.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_failures_are_audited(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    tport = free_port()
    start(gw, route(tport, nodes["a"], True))
    plain = Client(tport, source="127.0.0.40")
    plain.send(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
    got = plain.closed_by_peer()
    assert b"PONG" not in got and b"+OK" not in got
    ev = gw.wait_event("tls_failure", source="127.0.0.40")
    assert ev["port"] == tport and ev["reason"]

    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    raw = socket.create_connection(("127.0.0.1", tport), timeout=5, source_address=("127.0.0.41", 0))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.recv(10)
    gw.wait_event("tls_failure", source="127.0.0.41")


def test_audit_records_a_session(gw: EnvGateway, nodes: dict[str, Node], pki: Pki) -> None:  # noqa: F811
    tport = free_port()
    start(gw, route(tport, nodes["b"], True))
    c = Client(tport, source="127.0.0.50", tls=pki)
    c.auth()
    assert c.call("SET", "audited", "x" * 1000) == b"+OK\r\n"
    c.close()
    connect = gw.wait_event("connect", source="127.0.0.50")
    gw.wait_event("auth_success", source="127.0.0.50")
    done = gw.wait_event("disconnect", source="127.0.0.50")
    assert done["databaseId"] == "db-b" and done["port"] == tport
    assert done["bytesIn"] > 1000 and done["bytesOut"] >= 10
    assert connect["sourcePort"] == done["sourcePort"] > 0
    assert connect["time"].endswith("Z") and "T" in connect["time"]


@pytest.fixture
def small_audit_gw(pki: Pki) -> Iterator[EnvGateway]:  # noqa: F811
    yield from make_gateway(pki, AMR_GATEWAY_AUDIT_MAX_BYTES="2048", AMR_GATEWAY_AUDIT_BACKUPS="2")


def test_audit_rotation(small_audit_gw: EnvGateway, nodes: dict[str, Node]) -> None:  # noqa: F811
    gw = small_audit_gw
    port = free_port()
    start(gw, route(port, nodes["a"]))
    for i in range(40):
        c = Client(port, source=f"127.0.1.{i + 1}")
        c.auth()
        c.close()
    logs = gw.home / "logs"
    wait_until(lambda: (logs / "connections.jsonl.2").exists(), 3.0, what="two rotations")
    assert not (logs / "connections.jsonl.3").exists()
    for f in logs.glob("connections*"):
        assert f.stat().st_size <= 2048
        for line in f.read_text().splitlines():
            json.loads(line)


@pytest.fixture
def nopass(workdir: Path) -> Iterator[Node]:  # noqa: F811
    yield from run_nopass_valkey(workdir)


def test_no_password_database_switches_to_splice(gw: EnvGateway, nopass: Node) -> None:
    port = free_port()
    start(gw, route(port, nopass))
    c = Client(port, source="127.0.0.60")
    # Well over the pre-auth buffer limit, once the first command has shown no auth is needed.
    assert c.call("PING") == b"+PONG\r\n"
    big = b"v" * 100_000
    assert c.call("SET", "big", big) == b"+OK\r\n"
    assert c.call("GET", "big") == b"$100000\r\n" + big + b"\r\n"
    c.close()
    ev = gw.wait_event("auth_success", source="127.0.0.60")
    assert ev["reason"] == "no password required"


def test_half_closed_pipeline_of_guesses_is_judged_one_by_one(gw: EnvGateway, nodes: dict[str, Node]) -> None:  # noqa: F811
    # Commands after an AUTH wait for its verdict; a client that half-closes right after its
    # pipeline still gets every reply, and every guess in it is counted (the limit here is 3).
    port = free_port()
    start(gw, route(port, nodes["a"]))
    c = Client(port, source="127.0.0.70")
    c.send(b'"AUTH" wrong1\r\n' + encode("AUTH", "wrong2") + f"AUTH {PASSWORD}\r\nPING\r\n".encode())
    c.sock.shutdown(socket.SHUT_WR)
    got = c.closed_by_peer(5)
    assert got.startswith(b"-WRONGPASS") and got.count(b"-WRONGPASS") == 2, got
    assert got.endswith(b"+OK\r\n+PONG\r\n"), got
    wait_until(
        lambda: len(gw.events("auth_failure", source="127.0.0.70")) == 2, 3, what="both failures audited"
    )
    # The same pipeline with one more wrong guess: the third failure blocks, and neither the right
    # key nor PING after it reaches the engine.
    c = Client(port, source="127.0.0.71")
    c.send(b"'AUTH' w1\r\nAUTH w2\r\n\"\\x41UTH\" w3\r\n" + f"AUTH {PASSWORD}\r\nPING\r\n".encode())
    c.sock.shutdown(socket.SHUT_WR)
    got = c.closed_by_peer(5)
    assert got.count(b"-WRONGPASS") == 3 and b"+OK" not in got and b"PONG" not in got, got
    gw.wait_event("auth_failure", source="127.0.0.71")
    assert not gw.events("auth_success", source="127.0.0.71")
