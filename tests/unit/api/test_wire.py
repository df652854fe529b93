"""ARM JSON parsing details: merge-patch of persistence, case-insensitive names."""

from __future__ import annotations

from amr.api.wire_resources import parse_database_request, parse_persistence
from amr.model.enums import AofFrequency, RdbFrequency
from amr.model.resources import Persistence


def test_patch_of_one_persistence_field_keeps_the_rest() -> None:
    current = Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.ONE_HOUR)
    merged = parse_persistence({"rdbFrequency": "6h"}, base=current)
    assert merged == Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.SIX_HOURS)


def test_patch_can_switch_persistence_off_and_on() -> None:
    current = Persistence(rdb_enabled=True, rdb_frequency=RdbFrequency.SIX_HOURS)
    switched = parse_persistence({"rdbEnabled": False, "aofEnabled": True}, base=current)
    assert switched == Persistence(aof_enabled=True, aof_frequency=AofFrequency.ONE_SECOND)


def test_put_persistence_is_a_full_description() -> None:
    assert parse_persistence({"aofEnabled": True, "aofFrequency": "always"}) == Persistence(
        aof_enabled=True, aof_frequency=AofFrequency.ALWAYS
    )


def test_property_names_match_without_case() -> None:
    request = parse_database_request({"Properties": {"EvictionPolicy": "noeviction", "PORT": 10001}})
    assert request.fields["eviction_policy"].value == "NoEviction"
    assert request.port == 10001
