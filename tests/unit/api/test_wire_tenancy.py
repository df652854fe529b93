"""ARM JSON of the subscription, tenant, regions and cloud metadata document: the fields clients
read (az login, az cloud register, az's display-name lookup, Terraform, msrestazure)."""

from __future__ import annotations

import pytest

from amr.api.wire_tenancy import (
    CLOUD_AUDIENCES,
    METADATA_API_VERSIONS,
    render_cloud_metadata,
    render_location,
    render_location_list,
    render_subscription,
    render_subscription_list,
    render_tenant,
)
from amr.logic.security.token_claims import MANAGEMENT_AUDIENCES
from amr.model.regions import REGIONS
from amr.model.tenancy import SUBSCRIPTION_DISPLAY_NAME

SUB, TENANT = "sub-1", "tenant-1"
BASE = "https://localhost:8443"


def test_subscription_has_the_microsoft_resources_shape() -> None:
    assert render_subscription(SUB, TENANT) == {
        "id": "/subscriptions/sub-1",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": SUB,
        "tenantId": TENANT,
        "displayName": SUBSCRIPTION_DISPLAY_NAME,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "tags": {},
    }
    listing = render_subscription_list(SUB, TENANT)
    assert listing["value"] == [render_subscription(SUB, TENANT)]
    assert listing["count"] == {"type": "Total", "value": 1}


def test_tenant_is_the_home_tenant() -> None:
    t = render_tenant(TENANT)
    assert (t["id"], t["tenantId"], t["tenantCategory"]) == ("/tenants/tenant-1", TENANT, "Home")
    assert t["defaultDomain"] in t["domains"] and t["displayName"]


def test_location_has_names_and_metadata_with_its_pair() -> None:
    eastus = next(r for r in REGIONS if r.name == "eastus")
    loc = render_location(eastus, SUB)
    assert loc["id"] == "/subscriptions/sub-1/locations/eastus"
    assert (loc["name"], loc["type"], loc["displayName"], loc["regionalDisplayName"]) == (
        "eastus", "Region", "East US", "(US) East US",
    )  # fmt: skip
    meta = loc["metadata"]
    assert (meta["regionType"], meta["regionCategory"], meta["geographyGroup"]) == (
        "Physical",
        "Recommended",
        "US",
    )
    assert meta["pairedRegion"] == [{"name": "westus", "id": "/subscriptions/sub-1/locations/westus"}]
    assert isinstance(meta["latitude"], str) and isinstance(meta["longitude"], str)


def test_a_region_without_a_pair_has_an_empty_pair_list() -> None:
    italy = next(r for r in REGIONS if r.name == "italynorth")
    assert render_location(italy, SUB)["metadata"]["pairedRegion"] == []


def test_the_location_list_is_every_region() -> None:
    assert [v["name"] for v in render_location_list(SUB)["value"]] == [r.name for r in REGIONS]


def test_metadata_names_amrs_own_endpoints_and_token_audiences() -> None:
    doc = render_cloud_metadata(BASE + "/", "2022-09-01")
    assert doc["name"] == "amr"
    assert doc["resourceManager"] == BASE + "/"
    # az's authority: loginEndpoint + "/" + tenant, where amr serves /{tenant}/oauth2/v2.0/token.
    assert doc["authentication"]["loginEndpoint"] == BASE
    assert doc["authentication"]["audiences"] == [
        "https://management.core.windows.net/",
        "https://management.azure.com/",
    ]
    assert doc["suffixes"] == {}  # az reads the key


def test_every_advertised_audience_is_one_amrs_tokens_are_accepted_for() -> None:
    assert set(CLOUD_AUDIENCES) <= set(MANAGEMENT_AUDIENCES)
    for version in METADATA_API_VERSIONS:
        doc = render_cloud_metadata(BASE, version)
        cloud = doc[0] if isinstance(doc, list) else doc
        assert set(cloud["authentication"]["audiences"]) <= set(MANAGEMENT_AUDIENCES)


@pytest.mark.parametrize(
    ("version", "listing"), [("2019-05-01", True), ("2020-06-01", True), ("2022-09-01", False)]
)
def test_older_versions_list_the_cloud_and_the_current_one_describes_it_alone(
    version: str, listing: bool
) -> None:
    doc = render_cloud_metadata(BASE, version)
    assert isinstance(doc, list) is listing
    cloud = doc[0] if isinstance(doc, list) else doc
    assert cloud == render_cloud_metadata(BASE, "2022-09-01")


def test_the_2015_document_has_the_old_keys() -> None:
    doc = render_cloud_metadata(BASE, "2015-01-01")
    assert doc["authentication"]["loginEndpoint"] == BASE + "/"
    assert {"galleryEndpoint", "graphEndpoint", "portalEndpoint"} <= set(doc)
