"""The gateway with real processes: valkey-server nodes, the gateway subprocess, TLS, redis-py."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.model.routes import Route
from amr.pki import issue_server_certificate
from amr.settings import Settings
from tests.integration.amr_service import free_port, wait_until
from tests.integration.gateway_harness import (
    PASSWORD,
    Gateway,
    Node,
    Pki,
    port_open,
)


@pytest.fixture
def gateway(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Gateway]:
    home = Path(tempfile.mkdtemp(prefix="amr-gw-"))
    gw = Gateway(home, pki)
    try:
        yield gw
    finally:
        gw.stop()
        log = gw.log()
        print(log)  # shown by pytest when the test fails
        shutil.rmtree(home, ignore_errors=True)
        # Payload bytes (AUTH carries the password) must never reach the logs, even at debug level.
        assert PASSWORD not in log
        assert "Traceback" not in log, log
        assert " WARNING " not in log, log


def tls_client(pki: Pki, port: int, host: str = "localhost", **kw: object) -> redis.Redis:
    args: dict[str, object] = {
        "password": PASSWORD,
        "ssl": True,
        "ssl_ca_certs": pki.ca,
        "socket_timeout": 10,
        "retry": Retry(NoBackoff(), 0),
    }
    args.update(kw)
    return redis.Redis(host=host, port=port, **args)  # type: ignore[arg-type]


def plain_client(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=10, retry=Retry(NoBackoff(), 0)
    )


def start_with(gw: Gateway, *routes: Route) -> None:
    gw.set_routes(*routes)
    gw.start()
    for r in routes:
        wait_until(functools.partial(port_open, r.port), 10, what=f"gateway port {r.port}")


def tls_route(port: int, node: Node, version: str = "1.2") -> Route:
    return Route(
        port=port, tls=True, target=node.socket_path, database_id=f"db-{node.name}", min_tls_version=version
    )


def plain_route(port: int, node: Node) -> Route:
    return Route(port=port, tls=False, target=node.socket_path, database_id=f"db-{node.name}")


def test_tls_round_trip(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"]))
    for host in ("localhost", "127.0.0.1"):
        c = tls_client(pki, port, host=host)
        try:
            assert c.ping()
            assert c.set(f"k-{host}", "v")
            assert c.get(f"k-{host}") == b"v"
            assert c.get("whoami") == b"a"
        finally:
            c.close()


def test_wrong_password_is_the_engines_answer(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"]))
    c = tls_client(pki, port, password="nope")
    with pytest.raises(redis.AuthenticationError):
        c.ping()
    c.close()


def test_plaintext_route(gateway: Gateway, nodes: dict[str, Node]) -> None:
    port = free_port()
    start_with(gateway, plain_route(port, nodes["b"]))
    c = plain_client(port)
    try:
        assert c.ping()
        assert c.get("whoami") == b"b"
    finally:
        c.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls11_client_refused(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"], version="1.0"))
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"PING\r\n")
                s.recv(10)
    c = tls_client(pki, port)
    assert c.ping()
    c.close()


def test_tls13_floor(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"], version="1.3"))
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.recv(10)
    c = tls_client(pki, port)
    assert c.ping()
    c.close()


def test_plaintext_on_tls_port_gets_no_answer(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
        received = b""
        try:
            while chunk := s.recv(4096):
                received += chunk
        except (TimeoutError, ConnectionError):
            pass
    assert b"PONG" not in received and b"+OK" not in received


def test_route_added_removed_and_retargeted(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    p1, p2 = free_port(), free_port()
    start_with(gateway, plain_route(p1, nodes["a"]))
    assert not port_open(p2)

    # Added: listening within a second.
    gateway.set_routes(plain_route(p1, nodes["a"]), tls_route(p2, nodes["b"]))
    wait_until(lambda: port_open(p2), 1.0, what="new route")
    c2 = tls_client(pki, p2)
    assert c2.get("whoami") == b"b"

    # Retargeted: new connections go to the new node, the open one stays on the old node.
    c1 = plain_client(p1)
    assert c1.get("whoami") == b"a"
    gateway.set_routes(plain_route(p1, nodes["b"]), tls_route(p2, nodes["b"]))

    def moved() -> bool:
        c = plain_client(p1)
        try:
            return c.get("whoami") == b"b"
        finally:
            c.close()

    wait_until(moved, 1.0, what="retarget")
    assert c1.get("whoami") == b"a"

    # Removed: listener closed and the open connection with it.
    gateway.set_routes(plain_route(p1, nodes["b"]))
    wait_until(lambda: not port_open(p2), 1.0, what="listener closed")
    with pytest.raises(redis.ConnectionError):
        c2.ping()
    c2.close()
    c1.close()
    assert gateway.alive()


def test_removed_route_closes_open_connection(gateway: Gateway, nodes: dict[str, Node]) -> None:
    port = free_port()
    start_with(gateway, plain_route(port, nodes["a"]))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(f"AUTH {PASSWORD}\r\n".encode())
        assert s.recv(64) == b"+OK\r\n"
        gateway.set_routes()
        s.settimeout(2)
        assert s.recv(64) == b""  # closed by the gateway
    except ConnectionResetError:
        pass
    finally:
        s.close()
    wait_until(lambda: not port_open(port), 1.0, what="listener closed")


def test_tls_route_becomes_plain(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"]))
    assert tls_client(pki, port).ping()
    gateway.set_routes(plain_route(port, nodes["a"]))

    def plain_works() -> bool:
        c = plain_client(port)
        try:
            return bool(c.ping())
        finally:
            c.close()

    wait_until(plain_works, 2.0, what="plain listener")


def test_pipeline_and_large_value(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    port = free_port()
    start_with(gateway, tls_route(port, nodes["a"]))
    c = tls_client(pki, port)
    try:
        pipe = c.pipeline(transaction=False)
        for i in range(10_000):
            pipe.set(f"pipe:{i}", i)
        assert all(pipe.execute())
        pipe = c.pipeline(transaction=False)
        for i in range(10_000):
            pipe.get(f"pipe:{i}")
        assert pipe.execute() == [str(i).encode() for i in range(10_000)]
        big = os.urandom(10 * 1024 * 1024)
        assert c.set("big", big)
        assert c.get("big") == big
    finally:
        c.delete("big")
        c.close()
    p = plain_client(free_port())  # plain route too, for the non-TLS splice path
    p.close()


def test_large_value_plain(gateway: Gateway, nodes: dict[str, Node]) -> None:
    port = free_port()
    start_with(gateway, plain_route(port, nodes["b"]))
    c = plain_client(port)
    try:
        big = os.urandom(10 * 1024 * 1024)
        assert c.set("big-plain", big)
        assert c.get("big-plain") == big
        assert c.delete("big-plain") == 1
    finally:
        c.close()


def test_garbage_does_not_hurt_others(gateway: Gateway, nodes: dict[str, Node], pki: Pki) -> None:
    tp, pp = free_port(), free_port()
    start_with(gateway, tls_route(tp, nodes["a"]), plain_route(pp, nodes["b"]))
    good = tls_client(pki, tp)
    assert good.ping()
    for port in (tp, pp):
        for _ in range(5):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(os.urandom(64 * 1024))
                    s.settimeout(0.5)
                    try:
                        s.recv(1024)
                    except (TimeoutError, ConnectionError):
                        pass
            except ConnectionError:
                pass
    # A client that connects and resets mid-handshake.
    with socket.create_connection(("127.0.0.1", tp), timeout=2) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert gateway.alive()
    assert good.ping()
    other = plain_client(pp)
    assert other.ping()
    other.close()
    good.close()


def test_target_down_closes_client_promptly(gateway: Gateway, pki: Pki, workdir: Path) -> None:
    port = free_port()
    missing = Node(str(workdir / "nope.sock"), "x")
    start_with(gateway, plain_route(port, missing))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(2)
        # The node is connected on the client's first bytes (an idle connection never touches it).
        s.sendall(b"PING\r\n")
        start = time.monotonic()
        try:
            assert s.recv(16) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < 2
        client = f"127.0.0.1:{s.getsockname()[1]}"
    # The connection's log line names its database and client (bound per connection, not passed).
    line = wait_until(
        lambda: [line for line in gateway.log().splitlines() if "target unavailable" in line],
        2.0,
        what="the connection's log line",
    )
    assert f"[database=db-x client={client}]" in line[0], line  # type: ignore[index]


def test_malformed_file_keeps_routes_then_recovers(gateway: Gateway, nodes: dict[str, Node]) -> None:
    p1, p2 = free_port(), free_port()
    start_with(gateway, plain_route(p1, nodes["a"]))
    gateway.write_raw("{ not json")
    wait_until(lambda: "keeping the previous routes" in gateway.log(), 2.0, what="malformed file logged")
    assert port_open(p1)
    gateway.set_routes(plain_route(p1, nodes["a"]), plain_route(p2, nodes["b"]))
    wait_until(lambda: port_open(p2), 1.0, what="recovered")
    os.unlink(gateway.routes_file)
    wait_until(lambda: not port_open(p1) and not port_open(p2), 1.0, what="missing file means no routes")


def test_busy_port_is_retried(gateway: Gateway, nodes: dict[str, Node]) -> None:
    busy, other = free_port(), free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", busy))
    blocker.listen(1)
    try:
        start_with(gateway, plain_route(other, nodes["a"]))
        gateway.set_routes(plain_route(other, nodes["a"]), plain_route(busy, nodes["b"]))
        wait_until(lambda: f"cannot listen on port {busy}" in gateway.log(), 2.0, what="bind error logged")
        assert plain_client(other).ping()
    finally:
        blocker.close()

    def busy_serves() -> bool:
        c = plain_client(busy)
        try:
            return c.get("whoami") == b"b"
        finally:
            c.close()

    wait_until(busy_serves, 2.0, what="retried bind")
    assert gateway.log().count(f"cannot listen on port {busy}") == 1


def test_certificate_reload(gateway: Gateway, nodes: dict[str, Node], pki: Pki, tmp_path: Path) -> None:
    # A copy of the PKI, so rotating does not disturb other tests.
    home = Path(tempfile.mkdtemp(prefix="amr-pk-"))
    try:
        s = Settings(home=home)
        shutil.copytree(Path(pki.ca).parent, s.pki_dir)
        port = free_port()
        gateway.set_routes(
            tls_route(port, nodes["a"]), cert=str(s.server_cert_file), key=str(s.server_key_file)
        )
        gateway.start()
        wait_until(lambda: port_open(port), 10, what="gateway")
        old = tls_client(pki, port, host="127.0.0.1")
        assert old.ping()

        def served_serial() -> int:
            ctx = ssl.create_default_context(cafile=pki.ca)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                    der = t.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

        first = served_serial()
        issue_server_certificate(s)
        new_serial = x509.load_pem_x509_certificate(s.server_cert_file.read_bytes()).serial_number
        assert new_serial != first
        wait_until(lambda: served_serial() == new_serial, 2.0, what="new certificate served")
        assert old.ping()  # the open connection is untouched
        old.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_sigterm_exits_cleanly(gateway: Gateway, nodes: dict[str, Node]) -> None:
    port = free_port()
    start_with(gateway, plain_route(port, nodes["a"]))
    c = plain_client(port)
    assert c.ping()
    assert gateway.stop() == 0
    assert not port_open(port)
    c.close()


def test_plain_half_close_still_gets_replies(gateway: Gateway, nodes: dict[str, Node]) -> None:
    port = free_port()
    start_with(gateway, plain_route(port, nodes["a"]))
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
            s.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := s.recv(4096):
                received += chunk
        assert received == b"+OK\r\n+PONG\r\n"
