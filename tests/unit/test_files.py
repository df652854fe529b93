"""amr.files.write_atomic: the new content or the old, never a half-written or readable-by-others file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from amr.files import write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_private_by_default_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    write_atomic(target, "one")
    write_atomic(target, b"two", durable=False)
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_public_mode_is_given_once_written(tmp_path: Path) -> None:
    target = tmp_path / "ca.pem"
    write_atomic(target, b"cert", mode=0o644)
    assert _mode(target) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "routes.json"
    write_atomic(target, "old")

    class Unencodable(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, Unencodable("new"))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]
