from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from amr.logic.keyslot import choose_key_slot
from amr.pki import ensure_pki
from amr.settings import Settings
from tests.integration.amr_service import AmrService
from tests.integration.gateway_harness import Node, Pki, start_valkey


@pytest.fixture(scope="module")
def amr_service() -> Iterator[AmrService]:
    """A running amr shared by the tests of one module."""
    service = AmrService().start()
    try:
        yield service
    finally:
        service.destroy()


def running_service(extra_env: dict[str, str] | None = None) -> Iterator[AmrService]:
    """A running amr with the resource group ``rg``, destroyed afterwards (the body of a fixture)."""
    svc = AmrService(extra_env).start()
    try:
        svc.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        yield svc
    finally:
        svc.destroy()


# Four shards per database, as the sharding and scaling tests use.
FOUR_SHARDS = {"AMR_ENGINE_MAX_SHARDS_PER_DATABASE": "4"}


def first_shard_key(prefix: str) -> str:
    """A key named ``prefix<n>`` in the first of four shards' slots (0-4095): on the node whose
    INFO an EnterpriseCluster endpoint answers INFO with (blocked_clients)."""
    return next(f"{prefix}{i}" for i in range(1000) if choose_key_slot(f"{prefix}{i}".encode()) < 4096)


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
