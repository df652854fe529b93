"""The management API under attack by a client with no credentials, against a real amr: huge and
trickled requests, forged tokens and secret guessing. Every attack is played over real HTTPS and
must fail for the attacker while the API keeps serving."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.amr_service import AmrService, wait_until

GIB = 1 << 30
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
FAILURE_LIMIT = 5
COOLDOWN = 6.0
CACHE_API = "2025-07-01"


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    svc = AmrService(
        {
            "AMR_API_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "AMR_API_BODY_TIMEOUT": str(BODY_TIMEOUT),
            "AMR_API_TOKEN_FAILURE_LIMIT": str(FAILURE_LIMIT),
            "AMR_API_TOKEN_COOLDOWN": str(COOLDOWN),
        }
    ).start()
    try:
        yield svc
    finally:
        svc.destroy()


def api_pid(service: AmrService) -> int:
    """The `amr api` process of this installation (the supervisor runs `python -m amr api --home H`)."""
    for pid in service.pids_under_home():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"amr" in args and b"api" in args:
            return pid
    raise AssertionError("no amr api process")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def tls_connection(service: AmrService) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=service.ca_file)
    raw = socket.create_connection(("localhost", service.api_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def anonymous(service: AmrService) -> httpx.Client:
    return httpx.Client(
        base_url=service.base_url, verify=ssl.create_default_context(cafile=service.ca_file), timeout=30
    )


def api_answers(service: AmrService) -> bool:
    with anonymous(service) as client:
        tenant = service.credentials["tenantId"]
        return client.get(f"/{tenant}/v2.0/.well-known/openid-configuration").status_code == 200


class Upload:
    """A 1 GiB request streamed from a fixed 64 KiB chunk (never built in memory), reading the
    answer while sending: it stops when the server answers or closes the connection."""

    def __init__(self, service: AmrService, path: str, chunked: bool) -> None:
        self.sock = tls_connection(service)
        self.sock.settimeout(0.2)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {GIB}"
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
        ).encode()
        piece = b"a" * 65536
        self.chunk = b"10000\r\n" + piece + b"\r\n" if chunked else piece
        self.sent = 0
        self.answer = b""

    def _read(self) -> bool:
        """Read what is there; True once the connection is closed."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.answer += data
                if not self.sock.pending():
                    return False
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True

    def run(self, deadline: float) -> None:
        self.sock.sendall(self.head)
        pending = b""
        closed = False
        while time.monotonic() < deadline and not closed:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable or self.sock.pending():
                closed = self._read()
                if b"\r\n\r\n" in self.answer and b'"}}' in self.answer:
                    break
                continue
            if self.sent >= GIB:
                closed = self._read()
                continue
            pending = pending or self.chunk
            try:
                n = self.sock.send(pending)
            except TimeoutError:
                continue  # the server stopped reading: look for its answer
            except OSError:
                closed = self._read()
                continue
            self.sent += n
            pending = pending[n:]
        self.sock.close()

    @property
    def status(self) -> int:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else 0

    @property
    def error(self) -> dict[str, Any]:
        return dict(json.loads(self.answer.split(b"\r\n\r\n", 1)[1])["error"])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route", ["token", "arm"])
def test_gigabyte_unauthenticated_post_is_413_without_growing_the_api(
    service: AmrService, route: str, chunked: bool
) -> None:
    tenant, sub = service.credentials["tenantId"], service.subscription
    path = (
        f"/{tenant}/oauth2/v2.0/token"
        if route == "token"
        else f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c1"
        f"/databases/default/regenerateKey?api-version={CACHE_API}"
    )
    pid = api_pid(service)
    before = rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    upload = Upload(service, path, chunked)
    try:
        upload.run(time.monotonic() + 60)
    finally:
        done.set()
        sampler.join()
    assert upload.status == 413, upload.answer[:300]
    assert upload.error["code"] == "RequestEntityTooLarge" and "1048576 bytes" in upload.error["message"]
    assert upload.sent < 64 << 20, f"the API read {upload.sent} bytes before refusing"
    grown = (peak[0] - before) / 1024
    print(f"{route} {'chunked' if chunked else 'content-length'}: sent {upload.sent} bytes, "
          f"api RSS {before} KiB -> peak {peak[0]} KiB (+{grown:.1f} MiB)")  # fmt: skip
    assert grown < 50, f"the api process grew by {grown:.1f} MiB"
    assert rss_kib(pid) - before < 50 * 1024 and api_pid(service) == pid
    assert api_answers(service)


def _closed(sock: ssl.SSLSocket) -> bool:
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


def test_fifty_connections_trickling_headers_are_closed_within_the_header_timeout(
    service: AmrService,
) -> None:
    socks = [tls_connection(service) for _ in range(50)]
    started = time.monotonic()
    closed_after: dict[int, float] = {}
    try:
        for s in socks:
            s.sendall(b"GET /providers/Microsoft.Cache/operations HTTP/1.1\r\nHost: l")
            s.setblocking(False)
        trickle = b"ocalhost\r\nX-Slow: " + b"a" * 200
        i = 0
        while len(closed_after) < len(socks) and time.monotonic() - started < HEADER_TIMEOUT + 10:
            readable, _, _ = select.select([s for s in socks if id(s) not in closed_after], [], [], 0.25)
            for s in readable:
                if _closed(s):
                    closed_after[id(s)] = time.monotonic() - started
            byte = trickle[i % len(trickle) : i % len(trickle) + 1]
            for s in socks:
                if id(s) not in closed_after:
                    try:
                        s.send(byte)  # one byte per connection every quarter second
                    except (ssl.SSLWantWriteError, BlockingIOError):
                        pass
                    except OSError:
                        closed_after[id(s)] = time.monotonic() - started
            i += 1
            if i == 4:
                assert api_answers(service)  # the API serves others during the attack
    finally:
        for s in socks:
            s.close()
    assert len(closed_after) == 50, f"{50 - len(closed_after)} trickling connections are still open"
    slowest, fastest = max(closed_after.values()), min(closed_after.values())
    print(
        f"50 trickling connections closed after {fastest:.2f}..{slowest:.2f} s (header timeout {HEADER_TIMEOUT} s)"
    )
    assert HEADER_TIMEOUT - 0.5 <= fastest and slowest <= HEADER_TIMEOUT + 2.0
    assert api_answers(service)


def test_trickled_body_is_408_within_the_body_timeout(service: AmrService) -> None:
    tenant = service.credentials["tenantId"]
    sock = tls_connection(service)
    sock.settimeout(0.3)
    started = time.monotonic()
    sock.sendall(
        f"POST /{tenant}/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n".encode()
    )
    answer = b""
    try:
        while time.monotonic() - started < BODY_TIMEOUT + 10:
            try:
                sock.send(b"g")
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            answer += data
    finally:
        sock.close()
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"RequestTimeout" in answer and b"api.body_timeout" in answer
    assert BODY_TIMEOUT - 0.5 <= took <= BODY_TIMEOUT + 3, took


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(service: AmrService, claims: dict[str, Any]) -> str:
    """A token with ``claims`` signed with the installation's real key (as if the key leaked or the
    issuer had a bug): only the claim checks stand between it and the API."""
    key = (service.home / "secrets" / "token.key").read_text().strip().encode()
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(hmac.new(key, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize(
    ("change", "mention"),
    [
        ({}, None),
        ({"aud": "https://vault.azure.net"}, "audience"),
        ({"aud": 5}, "'aud' claim"),
        ({"iss": "https://sts.windows.net/evil/"}, "issuer"),
        ({"tid": "00000000-0000-0000-0000-000000000000"}, "tenant"),
        ({"nbf": "future"}, "not valid yet"),
        ({"exp": "x"}, "'exp' claim"),
        ({"exp": None}, "'exp' claim"),
    ],
)
def test_signed_token_with_wrong_claims_is_401_not_500(
    service: AmrService, change: dict[str, Any], mention: str | None
) -> None:
    now = int(time.time())
    tenant = service.credentials["tenantId"]
    claims: dict[str, Any] = {
        "aud": "https://management.azure.com", "iss": f"https://amr.local/{tenant}/", "tid": tenant,
        "sub": "x", "iat": now, "nbf": now, "exp": now + 600, **change,
    }  # fmt: skip
    if claims["nbf"] == "future":
        claims["nbf"] = now + 3600
    with anonymous(service) as client:
        response = client.get(
            f"/subscriptions/{service.subscription}/resourcegroups?api-version=2024-03-01",
            headers={"Authorization": f"Bearer {forge(service, claims)}"},
        )
    if mention is None:  # the control: the same forgery with the right claims gets in
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken" and mention in error["message"], error


def test_guessing_the_client_secret_is_throttled_even_for_the_right_secret(service: AmrService) -> None:
    creds = service.credentials
    url = f"/{creds['tenantId']}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": creds["clientId"],
        "scope": "https://management.azure.com/.default",
    }
    with anonymous(service) as client:
        guesses = [
            client.post(
                url,
                data={**form, "client_secret": f"guess-{i}"},
                headers={"x-ms-client-request-id": f"guess-request-{i}"},
            )
            for i in range(FAILURE_LIMIT)
        ]
        assert [g.status_code for g in guesses] == [401] * FAILURE_LIMIT
        # The refusal is logged with the request it happened in (bound per request, not passed).
        api_log = service.home / "logs" / "api.log"
        refusal = f"source refused after repeated wrong client secrets [request_id=guess-request-{FAILURE_LIMIT - 1} "
        wait_until(lambda: refusal in api_log.read_text(), 5, what="the refusal's log line")
        assert "guess-0" not in api_log.read_text()  # nor any secret
        refused_at = time.monotonic()
        right = client.post(url, data={**form, "client_secret": creds["clientSecret"]})
        assert right.status_code == 429, right.text
        assert right.json()["error"] == "temporarily_unavailable" and "access_token" not in right.text
        assert 1 <= int(right.headers["Retry-After"]) <= COOLDOWN

        def token_again() -> bool:
            answer = client.post(url, data={**form, "client_secret": creds["clientSecret"]})
            assert answer.status_code in (200, 429), answer.text
            return answer.status_code == 200

        wait_until(token_again, COOLDOWN + 5, 0.25, what="the cooldown to end")
        assert time.monotonic() - refused_at >= COOLDOWN - 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["headers-over-16KiB", "not-http"],
)
def test_oversized_headers_and_garbage_get_a_400_arm_error(service: AmrService, request_bytes: bytes) -> None:
    sock = tls_connection(service)
    try:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "InvalidHttpRequest" and "16 KiB" in error["message"]
    assert api_answers(service)


def test_headers_under_16KiB_are_served(service: AmrService) -> None:
    tenant = service.credentials["tenantId"]
    with anonymous(service) as client:
        big = client.get(f"/{tenant}/v2.0/.well-known/openid-configuration", headers={"X-Big": "a" * 12_000})
    assert big.status_code == 200, big.text
