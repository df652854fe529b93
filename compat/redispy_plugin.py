"""A pytest plugin loaded into redis-py's own test suite (``-p redispy_plugin``) by compat/redispy.py.

It runs in the compatibility venv, not amr's: it imports no amr module. It does three things, each
told by an environment variable (so the access key never appears in a process list):

- COMPAT_REDIS_URL: the suite's ``--redis-url`` (it holds the password).
- COMPAT_PORTS, COMPAT_PASSWORD, COMPAT_TLS: redis-py's suite assumes a plaintext server without a
  password on localhost; many of its tests build their own client from ``master_host`` instead of
  the fixtures. Every TCP connection the suite makes for the target's host and ports gets the
  target's password (when it gives none) and, with COMPAT_TLS=1, TLS (verified against
  SSL_CERT_FILE), as a user's client of amr would. Other ports (the suite's hard-wired 6379, 16379
  ...) are left alone: they fail against every target alike.
- COMPAT_STANDALONE=1: the endpoint is a single server to its clients (EnterpriseCluster), so the
  suite runs its standalone tests whatever INFO's cluster_enabled says. What INFO said is written
  to COMPAT_INFO_FILE for the report.

Every test phase's outcome goes to COMPAT_RESULTS_FILE as a JSON line (nodeid, when, outcome,
message, xfail, duration); compat/report.py turns the lines into one outcome per test.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import pytest
import redis.connection

LOCAL_HOSTS = {"localhost", "127.0.0.1", None}


def _ports() -> set[int]:
    return {int(p) for p in os.environ.get("COMPAT_PORTS", "").split(",") if p}


def _for_target(kwargs: dict) -> bool:
    try:
        port = int(kwargs.get("port", 6379))
    except (TypeError, ValueError):
        return False  # the suite's own tests of bad ports: redis-py says what is wrong
    return kwargs.get("host", "localhost") in LOCAL_HOSTS and port in _ports()


def _patch_connections() -> None:
    """Give the target's password and TLS to every TCP connection the suite makes for the target,
    through a pool or directly (``Connection(**kwargs)``)."""
    password = os.environ.get("COMPAT_PASSWORD") or None
    tls = os.environ.get("COMPAT_TLS") == "1"
    plain, secure = redis.connection.Connection, redis.connection.SSLConnection
    original_init = plain.__init__

    # functools.wraps keeps __init__'s signature visible: the suite inspects it.
    @functools.wraps(original_init)
    def new(cls, *args, **kwargs):
        # A plain connection to a TLS target is made a TLS one (Python then runs its __init__).
        if tls and cls is plain and _for_target(kwargs):
            cls = secure
        return object.__new__(cls)

    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        if (
            password
            and kwargs.get("password") is None
            and kwargs.get("username") is None
            and _for_target(kwargs)
        ):
            kwargs["password"] = password
        original_init(self, *args, **kwargs)

    plain.__new__ = staticmethod(new)
    plain.__init__ = init


def _patch_info() -> None:
    """Record what INFO said; for a standalone endpoint, tell the suite it is not a cluster."""
    conftest = sys.modules.get("tests.conftest")
    if conftest is None:
        return
    original = conftest._get_info
    standalone = os.environ.get("COMPAT_STANDALONE") == "1"
    info_file = os.environ.get("COMPAT_INFO_FILE")

    def get_info(url):
        info = original(url)
        if info_file:
            with open(info_file, "w") as f:
                json.dump({k: info.get(k) for k in ("redis_version", "cluster_enabled")}, f)
        if standalone:
            info["cluster_enabled"] = 0
        return info

    conftest._get_info = get_info


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get("COMPAT_REDIS_URL")
    if url:
        config.option.redis_url = url
    _patch_connections()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Before the suite's conftest asks INFO: it decides cluster mode from the answer.
    _patch_info()


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(longrepr).strip().splitlines()[-1] if str(longrepr).strip() else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get("COMPAT_RESULTS_FILE")
    if not path:
        return
    record = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "message": _message(report)[:500] if report.outcome != "passed" else "",
        "xfail": hasattr(report, "wasxfail"),
        "duration": round(report.duration, 3),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
