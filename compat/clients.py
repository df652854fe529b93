"""The clients under test, installed into a gitignored cache (``.cache/compat``) on first use.

- ``venv/``: a virtualenv of its own (redis-py's test dependencies stay out of amr's) with the
  redis-py and hiredis versions amr's venv has, pytest and the plugins redis-py's suite needs, and
  valkey-glide.
- ``redis-py-<version>/``: redis-py's source release of that version (its sdist from PyPI, through
  pip download), for its ``tests/``. Its ``redis/`` package is removed: the tests run against the
  installed client, the one a user has.
- ``node/node_modules/ioredis``: ioredis from npm, with the machine's node and npm.

Each step is skipped when its result is there, so only the first run needs the package registries.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from amr.errors import AmrError

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "compat"
# What redis-py's tests import beyond the client (its dev_requirements, less linters and coverage).
REDISPY_TEST_DEPS = [
    "pytest", "pytest-asyncio", "pytest-timeout", "packaging", "ujson", "numpy", "uvloop",
    "pybreaker", "aiohttp", "xxhash", "pyjwt", "cryptography",
]  # fmt: skip
GLIDE = "valkey-glide"
IOREDIS = "ioredis"


class CompatSetupError(AmrError):
    """A client of the compatibility suite could not be installed."""


@dataclass(frozen=True)
class Clients:
    """Where the installed clients are."""

    python: Path  # the compatibility venv's interpreter
    redispy_version: str
    redispy_suite: Path  # the source release's root (holds tests/)
    node: str | None  # the node binary, None when the machine has none
    node_modules: Path


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise CompatSetupError(f"{what} failed: {(proc.stderr or proc.stdout)[-2000:]}")


def _venv(redispy: str) -> Path:
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    stamp = venv / f".installed-redis-{redispy}"
    if stamp.exists():
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], "creating the compatibility venv")
    pins = [f"redis=={redispy}", f"hiredis=={version('hiredis')}", *REDISPY_TEST_DEPS, GLIDE]
    _run([str(python), "-m", "pip", "install", "--quiet", *pins], "pip install " + " ".join(pins))
    stamp.touch()
    return python


def _suite(python: Path, redispy: str) -> Path:
    suite = CACHE / f"redis-py-{redispy}"
    if (suite / "tests" / "conftest.py").exists():
        return suite
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        _run(
            [str(python), "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
             "--dest", tmp, f"redis=={redispy}"],
            f"downloading redis-py {redispy}'s source release",
        )  # fmt: skip
        archive = next(Path(tmp).glob("redis-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        unpacked = Path(tmp) / f"redis-{redispy}"
        shutil.rmtree(unpacked / "redis")  # the installed client is the one under test
        shutil.rmtree(suite, ignore_errors=True)
        unpacked.rename(suite)
    return suite


def _ioredis(node: str | None) -> Path:
    modules = CACHE / "node" / "node_modules"
    npm = shutil.which("npm")
    if node is None or npm is None or (modules / IOREDIS / "package.json").exists():
        return modules
    (CACHE / "node").mkdir(parents=True, exist_ok=True)
    _run(
        [npm, "install", "--silent", "--no-audit", "--no-fund", IOREDIS],
        "npm install ioredis",
        cwd=CACHE / "node",
    )
    return modules


def ensure_clients() -> Clients:
    """Install what is missing and say where everything is."""
    CACHE.mkdir(parents=True, exist_ok=True)
    redispy = version("redis")
    python = _venv(redispy)
    node = shutil.which("node")
    return Clients(python, redispy, _suite(python, redispy), node, _ioredis(node))
