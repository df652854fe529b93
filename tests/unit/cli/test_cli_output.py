"""az-style output rendering: json, table, tsv, none and JMESPath queries."""

from __future__ import annotations

import argparse

import pytest

from amr.cli.common import parse_modules, parse_persistence, parse_tags, resource_group_of
from amr.cli.output import QueryError, RawText, render

ITEMS = [
    {"name": "c1", "location": "westus", "id": "/x", "sku": {"name": "B5"}, "tags": {}, "enabled": True},
    {
        "name": "cache-two",
        "location": "eastus",
        "id": "/y",
        "sku": {"name": "B10"},
        "tags": {},
        "enabled": False,
    },
]


def test_json_is_sorted_and_indented() -> None:
    assert render({"b": 1, "a": [1]}) == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert render(None) == ""
    assert render({"a": 1}, "none") == ""


def test_table_shows_scalar_columns_with_az_headers() -> None:
    assert render(ITEMS, "table").splitlines() == [
        "Name       Location  Enabled",
        "---------  --------  -------",
        "c1         westus    True",
        "cache-two  eastus    False",
    ]


def test_table_keeps_query_order_and_handles_scalars() -> None:
    out = render(ITEMS, "table", "[].{N:name, L:location}")
    assert out.splitlines()[0].split() == ["N", "L"]
    assert render(ITEMS, "table", "[].name").splitlines() == ["Result", "---------", "c1", "cache-two"]


def test_tsv() -> None:
    assert render(ITEMS, "tsv") == "true\t/x\twestus\tc1\nfalse\t/y\teastus\tcache-two\n"
    assert render(ITEMS, "tsv", "[].[name, location]") == "c1\twestus\ncache-two\teastus\n"
    assert render(ITEMS, "tsv", "[0].name") == "c1\n"
    assert render(ITEMS, "tsv", "[?name=='nope']") == ""


def test_query() -> None:
    assert render(ITEMS, "json", "[1].sku.name") == '"B10"\n'
    with pytest.raises(QueryError):
        render(ITEMS, "json", "[?")


def test_raw_text_ignores_format() -> None:
    assert render(RawText("export A=1\n"), "table", "x") == "export A=1\n"


def test_argument_parsers() -> None:
    assert parse_tags(["a=b", "c", "d=e=f"]) == {"a": "b", "c": "", "d": "e=f"}
    assert parse_tags([""]) == {}
    assert parse_tags(None) is None
    assert parse_persistence(["rdb-enabled=true", "rdb-frequency=6h"]) == {
        "rdbEnabled": True,
        "rdbFrequency": "6h",
    }
    with pytest.raises(argparse.ArgumentTypeError):
        parse_persistence(["aof-enabled=maybe"])
    assert parse_modules([["name=RediSearch"], ["name=RedisBloom", "args=ERROR_RATE 0.1"]]) == [
        {"name": "RediSearch"},
        {"name": "RedisBloom", "args": "ERROR_RATE 0.1"},
    ]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_modules([["args=x"]])
    rid = "/subscriptions/s/resourceGroups/My-RG/providers/Microsoft.Cache/redisEnterprise/c"
    assert resource_group_of(rid) == "My-RG"
