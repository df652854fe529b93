"""Telling which engine a valkey-server binary is."""

from __future__ import annotations

import pytest

from amr.model.node import EngineVersion
from amr.nodes.engine import parse_engine_version


@pytest.mark.parametrize(
    "text, version",
    [
        (
            "Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64 build=7eb4",
            EngineVersion("valkey", 8, 1),
        ),
        ("Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64", EngineVersion("redis", 7, 2)),
        ("something else", None),
    ],
)
def test_parse_engine_version(text: str, version: EngineVersion | None) -> None:
    assert parse_engine_version(text) == version
