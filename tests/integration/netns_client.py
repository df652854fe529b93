"""A redis-py client run inside a test host's network namespace (see netns.py).

    netns_client.py ping HOST PORT PASSWORD [CA_FILE]     one connection: AUTH + PING; prints PONG or the error
    netns_client.py hold HOST PORT PASSWORD [CA_FILE]     keeps one connection; reads "ping" lines on stdin,
                                                          answers PONG or CLOSED: <error>

CA_FILE given means TLS (verifying the chain against it; the host name is an IP the certificate may not name).
"""

from __future__ import annotations

import sys

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def _client(host: str, port: int, password: str, ca_file: str | None) -> redis.Redis:
    tls = {}
    if ca_file:
        tls = {"ssl": True, "ssl_ca_certs": ca_file, "ssl_check_hostname": False}
    # No retries: a refused or closed connection must show, not be hidden by a reconnect.
    return redis.Redis(
        host, port, password=password, socket_timeout=5, socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0), **tls,
    )  # fmt: skip


def ping(host: str, port: int, password: str, ca_file: str | None) -> int:
    try:
        print("PONG" if _client(host, port, password, ca_file).ping() else "NO")
    except Exception as e:  # noqa: BLE001 - report any failure as text
        print(f"ERROR: {type(e).__name__}: {e}")
    return 0


def hold(host: str, port: int, password: str, ca_file: str | None) -> int:
    client = _client(host, port, password, ca_file)
    client.ping()
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "ping":
            continue
        try:
            print("PONG" if client.ping() else "NO", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"CLOSED: {type(e).__name__}", flush=True)
    return 0


def main() -> int:
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    password = sys.argv[4]
    ca_file = sys.argv[5] if len(sys.argv) > 5 else None
    return {"ping": ping, "hold": hold}[mode](host, port, password, ca_file)


if __name__ == "__main__":
    sys.exit(main())
