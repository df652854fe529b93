"""Which ``location`` values amr accepts, and which region each one names.

ARM takes a region by its name ("eastus") or its display name ("East US"), in any case, and answers
an unknown one with a 400 naming the regions it offers: a resource group and a resource each have
their own code.
"""

from __future__ import annotations

from amr.errors import ArmError
from amr.model.regions import REGIONS, Region
from amr.model.resources import CLUSTER_TYPE


def location_key(location: str) -> str:
    """The URL form of a location ("East US" -> "eastus"): how two spellings of one place compare."""
    return location.replace(" ", "").lower()


def choose_region(location: str) -> Region | None:
    """The region ``location`` names, by name or display name; None when it names none."""
    key = location_key(location)
    return next((r for r in REGIONS if key in (r.name, location_key(r.display_name))), None)


def _available() -> str:
    return ",".join(r.name for r in REGIONS)


def _validate(location: str, error: ArmError) -> Region:
    region = choose_region(location)
    if region is None:
        raise error
    return region


def validate_group_location(location: str) -> Region:
    """A resource group's location must be a region amr offers (ARM's code and wording)."""
    return _validate(
        location,
        ArmError(
            "LocationNotAvailableForResourceGroup",
            f"The provided location '{location}' is not available for resource group. "
            f"List of available regions is '{_available()}'.",
            400,
        ),
    )


def validate_cache_location(location: str) -> Region:
    """A cache's location must be a region amr offers (ARM's code and wording)."""
    return _validate(
        location,
        ArmError(
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type '{CLUSTER_TYPE}'. "
            f"List of available regions for the resource type is '{_available()}'.",
            400,
            target="location",
        ),
    )
