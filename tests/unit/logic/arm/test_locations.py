"""Which locations amr accepts: a region by name or display name, in any case; anything else is
refused with ARM's code for a resource group or a resource. The region list keeps ARM's invariants."""

from __future__ import annotations

import pytest

from amr.errors import ArmError
from amr.logic.arm.locations import (
    choose_region,
    location_key,
    validate_cache_location,
    validate_group_location,
)
from amr.model.regions import REGIONS


@pytest.mark.parametrize(
    ("location", "region"),
    [
        ("eastus", "eastus"),
        ("EastUS", "eastus"),
        ("East US", "eastus"),
        ("east us", "eastus"),
        ("West US 2", "westus2"),
        ("westus2", "westus2"),
        ("Germany West Central", "germanywestcentral"),
        ("UK South", "uksouth"),
        ("UAE North", "uaenorth"),
    ],
)
def test_a_region_is_named_by_its_name_or_display_name(location: str, region: str) -> None:
    found = choose_region(location)
    assert found is not None and found.name == region
    assert validate_group_location(location) == found
    assert validate_cache_location(location) == found


@pytest.mark.parametrize("location", ["", "x", "mars", "eastus9", "East-US", "global"])
def test_anything_else_names_no_region(location: str) -> None:
    assert choose_region(location) is None


def test_a_group_in_an_unknown_location_gets_arms_resource_group_error() -> None:
    with pytest.raises(ArmError) as e:
        validate_group_location("mars")
    assert (e.value.code, e.value.status) == ("LocationNotAvailableForResourceGroup", 400)
    assert "'mars'" in e.value.message and "eastus,eastus2," in e.value.message


def test_a_cache_in_an_unknown_location_gets_arms_resource_type_error() -> None:
    with pytest.raises(ArmError) as e:
        validate_cache_location("mars")
    assert (e.value.code, e.value.status, e.value.target) == (
        "LocationNotAvailableForResourceType",
        400,
        "location",
    )
    assert "'Microsoft.Cache/redisEnterprise'" in e.value.message and "westeurope" in e.value.message


def test_region_names_are_unique_and_the_url_form_of_their_display_names() -> None:
    names = [r.name for r in REGIONS]
    assert len(set(names)) == len(names)
    for r in REGIONS:
        assert r.name == location_key(r.display_name), r
        assert r.regional_display_name == f"({r.geography_group}) {r.display_name}"
        float(r.latitude), float(r.longitude)  # numbers, written as ARM writes them (strings)


def test_every_paired_region_is_in_the_list() -> None:
    by_name = {r.name: r for r in REGIONS}
    for r in REGIONS:
        if r.paired_region:
            assert r.paired_region in by_name, r


def test_the_regions_the_docs_and_tests_use_are_offered() -> None:
    for location in ("eastus", "westus", "westus2", "East US"):
        assert choose_region(location) is not None
