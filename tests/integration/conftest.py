from __future__ import annotations

import gc
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.pki import ensure_pki
from amr.settings import Settings
from tests.integration.amr_service import AmrService, running_service
from tests.integration.gateway_harness import Node, Pki, start_valkey

# The integration tests' raw sockets, redis clients and the pipes of their client subprocesses are
# often left to the garbage collector when a test ends (or fails). amr itself runs in subprocesses
# here, so these warnings are never amr's.
UNCLOSED_TEST_SOCKETS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning",
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning",
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning",
    "ignore:unclosed <socket.socket:ResourceWarning",
    "ignore:unclosed <ssl.SSLSocket:ResourceWarning",
    "ignore:unclosed file <_io.TextIOWrapper:ResourceWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith("tests/integration/"):
            item.add_marker(UNCLOSED_TEST_SOCKETS)


@pytest.fixture(scope="module", autouse=True)
def collect_leaked_client_sockets() -> Iterator[None]:
    """Finalise what a module's tests left to the garbage collector when the module ends, in its last
    test's teardown (under the filters above): otherwise the warnings fire whenever the collector next
    runs, which under xdist may be in a unit test the same worker runs next."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def amr_service() -> Iterator[AmrService]:
    """A running amr shared by the tests of one module."""
    service = AmrService().start()
    try:
        yield service
    finally:
        service.destroy()


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, shared by the tests of one module (a module
    defining its own ``service`` uses that instead)."""
    yield from running_service()


# --- the gateway alone (gateway_harness): a work directory, two nodes and a PKI per module ---


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="amr-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def nodes(workdir: Path) -> Iterator[dict[str, Node]]:
    procs: list[subprocess.Popen[bytes]] = []
    out: dict[str, Node] = {}
    try:
        for name in ("a", "b"):
            proc, node = start_valkey(workdir, name)
            procs.append(proc)
            out[name] = node
        yield out
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def pki(workdir: Path) -> Pki:
    s = Settings(home=workdir / "pki-home")
    ensure_pki(s)
    return Pki(str(s.ca_cert_file), str(s.server_cert_file), str(s.server_key_file), s)
