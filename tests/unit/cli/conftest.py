"""The amr CLI against the real API app in process (amr.testing.api: create_app over a SqlStore, the
FakeReconciler): the requests the CLI sends are the ones the API accepts, and what it prints is what the
API answers. An operation finishes after it has been polled ``POLLS`` times, as if a reconcile tick ran
between two polls, so the tests see the CLI wait for it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from amr.api.auth import Principal
from amr.cli.context import Context
from amr.cli.main import main
from amr.settings import Settings, load_settings
from amr.testing.api import InProcessApi, SettlingTransport, in_process_api

SUB = "00000000-0000-0000-0000-0000000000aa"
PRINCIPAL = Principal(
    "00000000-0000-0000-0000-0000000000bb", "00000000-0000-0000-0000-0000000000cc", "s3cret"
)
ENDPOINT = "https://localhost:8443"
BASE = ("--cluster-name", "cache1", "-g", "rg1")
POLLS = 2  # polls answered InProgress before an operation completes


def is_token_request(request: httpx.Request) -> bool:
    return request.url.path.endswith("/oauth2/v2.0/token")


def is_poll(request: httpx.Request) -> bool:
    path = request.url.path.lower()
    return "/operationsstatus/" in path or "/operationresults/" in path


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        assert self.out, (self.code, self.err)
        return json.loads(self.out)


class Runner:
    """Runs ``amr`` argv against the app; ``requests`` are all the HTTP requests the CLI sent and
    ``sleeps`` the waits between its polls."""

    def __init__(self, home: Path, app: InProcessApi, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.app, self.capsys = home, app, capsys
        self.sleeps: list[float] = []
        self.transport = SettlingTransport(app, settle=self._settle_after_polls)
        self.settle: Callable[[], None] = app.reconciler.settle  # a test may make the tick fail instead
        self._polled: dict[str, int] = {}

    @property
    def requests(self) -> list[httpx.Request]:
        return self.transport.requests

    def _settle_after_polls(self) -> None:
        # The reconciler finishes an operation once the CLI has polled it POLLS times.
        last = self.transport.requests[-1]
        if is_poll(last):
            seen = self._polled[last.url.path] = self._polled.get(last.url.path, 0) + 1
            if seen >= POLLS:
                self.settle()

    def __call__(
        self, *argv: str, stdin: io.StringIO | None = None, stderr: io.StringIO | None = None
    ) -> Result:
        out = io.StringIO()
        err = stderr if stderr is not None else io.StringIO()
        ctx = Context(
            stdin=stdin if stdin is not None else io.StringIO(),
            stdout=out,
            stderr=err,
            settings_factory=lambda: load_settings(home=self.home, env={}),
            transport=self.transport,
            poll_interval=0.25,
            sleep=self.sleeps.append,
        )
        code = main(list(argv), context=ctx)
        captured = self.capsys.readouterr()  # argparse writes usage errors to sys.stderr
        all_err = err.getvalue() + captured.err
        assert "Traceback" not in all_err and "Traceback" not in out.getvalue()
        return Result(code, out.getvalue() + captured.out, all_err)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessApi]:
    with in_process_api(Settings(home=tmp_path / "api"), subscription_id=SUB, principal=PRINCIPAL) as api:
        yield api


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The CLI's AMR_HOME, with the credentials ``amr serve`` would have written."""
    home = tmp_path / "cli"
    home.mkdir()
    creds = {
        "tenantId": PRINCIPAL.tenant_id,
        "subscriptionId": SUB,
        "clientId": PRINCIPAL.client_id,
        "clientSecret": PRINCIPAL.client_secret,
        "managementEndpoint": ENDPOINT,
        "caFile": str(home / "pki" / "ca.pem"),
    }
    (home / "credentials.json").write_text(json.dumps(creds))
    return home


@pytest.fixture
def run(home: Path, app: InProcessApi, capsys: pytest.CaptureFixture[str]) -> Runner:
    return Runner(home, app, capsys)


def create_cluster(run: Callable[..., Result], *extra: str) -> Result:
    assert run("group", "create", "-n", "rg1", "-l", "westus").code == 0
    return run(
        "redisenterprise", "create", "-n", "cache1", "-g", "rg1", "-l", "westus", "--sku", "Balanced_B5", *extra
    )  # fmt: skip
