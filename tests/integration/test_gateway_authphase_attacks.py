"""The authentication phase attacked as the security review did, against a real amr: two gateway
workers (SO_REUSEPORT), real TLS, real valkey-server nodes, raw sockets and redis-py.

Each attack runs from its own loopback source address (127.0.0.6x), so a block it earns never
touches the key holder's client (127.0.0.1). Short settings make the limits observable quickly:
``gateway.auth_timeout`` 2 s, ``gateway.auth_failure_limit`` 30, and a connection limit of 40 per
database (per worker: each worker counts its own connections).
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from amr.logic.security.node_credentials import CredentialMasters, database_uid_of_node
from tests.integration.amr_service import AmrService, wait_until

AUTH_TIMEOUT = 2.0
FAILURE_LIMIT = 30
MAX_CONNECTIONS = 40
ENV = {
    "AMR_GATEWAY_WORKERS": "2",
    "AMR_GATEWAY_AUTH_TIMEOUT": str(AUTH_TIMEOUT),
    "AMR_GATEWAY_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT),
    "AMR_GATEWAY_AUTH_FAILURE_WINDOW": "600",
    "AMR_GATEWAY_AUTH_COOLDOWN": "600",
    "AMR_GATEWAY_MAX_CONNECTIONS_PER_DATABASE": str(MAX_CONNECTIONS),
}


class Target:
    """The database under attack: its TLS port, its key, and the amr it runs in."""

    def __init__(self, service: AmrService, port: int, key: str) -> None:
        self.service = service
        self.port = port
        self.key = key
        self.tls = ssl.create_default_context(cafile=service.ca_file)

    def connect(self, source: str) -> ssl.SSLSocket:
        """A raw TLS connection from ``source`` (a loopback address), handshake done."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=(source, 0))
        return self.tls.wrap_socket(raw, server_hostname="localhost")

    def client(self) -> redis.Redis:
        """The key holder's redis-py client (from 127.0.0.1)."""
        return redis.Redis(
            "localhost", self.port, password=self.key, ssl=True, ssl_ca_certs=self.service.ca_file,
            socket_timeout=3, single_connection_client=True, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip

    def events(self, event: str, source: str) -> list[dict[str, Any]]:
        """``event`` records from ``source`` in every gateway worker's audit log."""
        out = []
        for path in sorted((self.service.home / "logs").glob("connections*.jsonl")):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record["event"] == event and record["source"] == source:
                    out.append({**record, "file": path.name})
        return out

    def node_socket(self) -> str:
        [sock] = sorted((self.service.home / "run").glob("*-0-0.sock"))
        return str(sock)

    def internal_passwords(self) -> dict[str, str]:
        """The real passwords of amr's users on this database's nodes, derived as amr derives them
        from the master secrets in AMR_HOME/secrets."""
        secrets = self.service.home / "secrets"
        masters = CredentialMasters(
            admin=(secrets / "admin.secret").read_text().strip(),
            ha=(secrets / "ha.secret").read_text().strip(),
            gateway=(secrets / "gateway.secret").read_text().strip(),
            monitor=(secrets / "monitor.secret").read_text().strip(),
        )
        c = masters.for_database(database_uid_of_node(self.node_socket()))
        return {
            "amr-admin": c.admin,
            "amr-replication": c.replication,
            "amr-ha": c.ha,
            "amr-gateway": c.gateway,
            "amr-monitor": c.monitor,
        }

    def node(self) -> redis.Redis:
        """The primary node on its own unix socket, as amr's admin user (to see what the engine got)."""
        password = self.internal_passwords()["amr-admin"]
        return redis.Redis(
            unix_socket_path=self.node_socket(), username="amr-admin", password=password, socket_timeout=5
        )


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    service = AmrService(extra_env=ENV).start()
    try:
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        service.amr_json(
            "redisenterprise", "create", "--cluster-name", "attacked", "-g", "rg", "-l", "eastus",
            "--sku", "Balanced_B0", "--access-keys-authentication", "Enabled",
            "--clustering-policy", "NoCluster", "--client-protocol", "Encrypted",
        )  # fmt: skip
        db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "attacked", "-g", "rg")
        t = Target(service, int(db["properties"]["port"]), service.primary_key("attacked"))
        wait_until(lambda: t.client().ping(), 20, what="the database to answer")
        # Both workers must be serving before the attacks, so the connections spread over them.
        wait_until(
            lambda: len(list((service.home / "logs").glob("connections*.jsonl"))) == 2 or _touch_workers(t),
            20,
            what="both gateway workers to take connections",
        )
        yield t
    finally:
        service.destroy()


def _touch_workers(t: Target) -> bool:
    """Make a few connections (each worker writes its audit file on its first one)."""
    for _ in range(8):
        t.client().ping()
    return False


def read_until_closed(sock: ssl.SSLSocket, deadline: float) -> tuple[bytes, bool]:
    """Everything ``sock`` receives until the peer closes it (True) or ``deadline`` passes (False)."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except (ConnectionError, ssl.SSLError, OSError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


# Inline forms of RESET the engine runs as RESET (valkey's sdssplitargs): the review spliced these
# as "no password required" and they then outlived the authentication deadline.
RESET_FORMS = [b'"RESET"', b"'RESET'", b'"\\x52ESET"', b're"set"', b'"R\\ESET"', b"RESET"]


def test_quoted_reset_connections_are_cut_at_the_auth_timeout_and_cannot_lock_out_the_key_holder(
    target: Target,
) -> None:
    attacker = "127.0.0.61"
    conns: list[ssl.SSLSocket] = []
    refused = 0
    for i in range(200):
        try:
            c = target.connect(attacker)
            # RESET, then a data command: without a password it must get NOAUTH, never an answer.
            c.sendall(RESET_FORMS[i % len(RESET_FORMS)] + b"\r\nGET k\r\n")
            conns.append(c)
        except (ConnectionError, ssl.SSLError, OSError):
            refused += 1
    started = time.monotonic()
    # Every one of them is closed by the gateway within the authentication deadline (plus slack for
    # 200 TLS handshakes on two cores), having been answered +RESET and NOAUTH at most.
    deadline = started + AUTH_TIMEOUT + 8
    for c in conns:
        data, closed = read_until_closed(c, deadline)
        c.close()
        assert closed, "an unauthenticated connection outlived the authentication deadline"
        replies = data.split(b"\r\n")
        assert all(
            r in (b"+RESET", b"") or r.startswith((b"-NOAUTH", b"-ERR max number")) for r in replies
        ), data
    # The key holder gets in (the attack cost it at most the authentication deadline).
    assert wait_until(lambda: target.client().set("k", "v"), 5, what="the key holder's client")
    # Every admitted attacker connection was cut by the deadline; none authenticated.
    admitted = len(target.events("connect", attacker))
    assert admitted >= MAX_CONNECTIONS
    wait_until(
        lambda: len(target.events("auth_timeout", attacker)) == admitted, 5, what="auth_timeout events"
    )
    assert not target.events("auth_success", attacker)


# Quoted, escaped and RESP forms of a password guess; the engine reads every one as AUTH.
def guess(i: int) -> bytes:
    forms = [
        b'"AUTH" guess%d\r\n',
        b"'AUTH' 'guess%d'\r\n",
        b'"\\x41UTH" "guess%d"\r\n',
        b'au"th" default guess%d\r\n',
        b"*2\r\n$4\r\nAUTH\r\n$7\r\ngues%03d\r\n",
        b'HELLO 3 "AUTH" default guess%d\r\n',
    ]
    return forms[i % len(forms)] % i


def test_quoted_auth_guesses_are_counted_and_blocked_across_both_workers(target: Target) -> None:
    attacker = "127.0.0.62"
    before = int(target.node().info("stats")["acl_access_denied_auth"])
    answered = refused = 0
    for i in range(150):
        try:
            c = target.connect(attacker)
        except (ConnectionError, ssl.SSLError, OSError):
            refused += 1  # blocked: closed at accept, before any TLS
            continue
        # Three guesses per connection, pipelined: each reaches the engine only after the previous
        # one was counted.
        c.sendall(guess(3 * i) + guess(3 * i + 1) + guess(3 * i + 2))
        data, _closed = read_until_closed(c, time.monotonic() + 5)
        c.close()
        if data:
            answered += 1
            assert data.startswith(b"-WRONGPASS"), data
    # Every guess that reached the engine is an audited failure, and the limit stopped them: the
    # 30th blocked the source, spread over both workers' connections.
    wait_until(lambda: len(target.events("auth_failure", attacker)) >= FAILURE_LIMIT, 5, what="failures")
    failures = target.events("auth_failure", attacker)
    assert len(failures) == FAILURE_LIMIT
    assert {f["file"] for f in failures} == {"connections.jsonl", "connections-1.jsonl"}
    assert {f["reason"] for f in failures} == {"WRONGPASS"}
    after = int(target.node().info("stats")["acl_access_denied_auth"])
    assert after - before == FAILURE_LIMIT  # the engine saw no more guesses than were counted
    assert refused > 100 and answered <= FAILURE_LIMIT
    assert target.events("auth_blocked", attacker)
    # Blocked per source: the key holder on another address is not.
    assert target.client().ping()


def test_internal_users_are_refused_on_the_public_port_even_with_the_right_password(target: Target) -> None:
    attacker = "127.0.0.63"
    passwords = target.internal_passwords()
    # The passwords are right: each opens its user on the node's own socket (inside AMR_HOME).
    for user, password in passwords.items():
        node = redis.Redis(unix_socket_path=target.node_socket(), username=user, password=password)
        assert node.ping()
        node.close()
    admin = passwords["amr-admin"].encode()
    attempts = [
        b"*3\r\n$4\r\nAUTH\r\n$9\r\namr-admin\r\n$%d\r\n%s\r\n" % (len(admin), admin),
        b'"AUTH" "amr-admin" "%s"\r\n' % admin,
        b"AUTH AMR-ADMIN %s\r\n" % admin,
    ] + [
        b"HELLO 3 AUTH %s %s\r\n" % (user.encode(), password.encode()) for user, password in passwords.items()
    ]
    for attempt in attempts:
        c = target.connect(attacker)
        # The refusal, then proof the connection is still unauthenticated.
        c.sendall(attempt + b"ROLE\r\n")
        data, _ = read_until_closed(c, time.monotonic() + AUTH_TIMEOUT + 3)
        c.close()
        assert data.startswith(b"-WRONGPASS"), data
        assert b"-NOAUTH" in data and b"master" not in data, data
    failures = target.events("auth_failure", attacker)
    assert len(failures) == len(attempts)
    assert {f["reason"] for f in failures} == {"internal_user"}
    # The engine never saw an internal name from the public port (its ACL log records failed AUTHs).
    log = target.node().acl_log()
    failed_users = {str(e.get("username")) for e in log if e.get("reason") == "auth"}
    assert "amr refused" in failed_users and not [u for u in failed_users if u.lower().startswith("amr-")], (
        log
    )
    # redis-py, as a client would configure it.
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(
            "localhost", target.port, username="amr-admin", password=admin.decode(), ssl=True,
            ssl_ca_certs=target.service.ca_file, socket_timeout=3, retry=Retry(NoBackoff(), 0),
        ).ping()  # fmt: skip


def test_the_key_holder_authenticates_in_quoted_and_resp_forms(target: Target) -> None:
    key = target.key.encode()
    for auth in (b'"AUTH" "%s"\r\n' % key, b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(key), key)):
        c = target.connect("127.0.0.64")
        c.sendall(auth + b"SET q 1\r\nGET q\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"\r\n") < 4 and time.monotonic() < deadline:
            c.settimeout(1)
            data += c.recv(4096)
        c.close()
        assert data == b"+OK\r\n+OK\r\n$1\r\n1\r\n", data


def test_shared_table_is_private_to_amr(target: Target) -> None:
    table = target.service.home / "gateway" / "auth-failures.bin"
    assert table.exists() and oct(table.stat().st_mode & 0o777) == "0o600"
    assert Path(table.parent).stat().st_mode & 0o077 == 0
