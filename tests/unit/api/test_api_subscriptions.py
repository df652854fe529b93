"""Microsoft.Resources routes az and the SDKs ask before touching a resource: the subscription (one,
the caller's), its locations, the tenant, and the cloud metadata document (no token needed); and the
one list of regions that resource groups and caches are validated against."""

from __future__ import annotations

import pytest

from tests.unit.api.api_harness import CLUSTER, CLUSTER_BODY, GROUPS_API, SUB, TENANT, Api

SUBS_API = "api-version=2022-12-01"


def test_the_subscription_list_is_the_one_subscription(api: Api) -> None:
    r = api.call("GET", "/subscriptions", query=SUBS_API)
    assert r.status_code == 200, r.text
    [sub] = r.json()["value"]
    assert (sub["subscriptionId"], sub["tenantId"], sub["state"]) == (SUB, TENANT, "Enabled")


@pytest.mark.parametrize("version", ["2016-06-01", "2021-01-01", "2022-12-01"])
def test_the_subscription_by_id_at_the_versions_clients_send(api: Api, version: str) -> None:
    r = api.call("GET", f"/subscriptions/{SUB.upper()}", query=f"api-version={version}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == f"/subscriptions/{SUB}"


def test_another_subscription_is_not_found(api: Api) -> None:
    for path in ("/subscriptions/00000000-0000-0000-0000-000000000000", "/subscriptions/nope/locations"):
        r = api.call("GET", path, query=SUBS_API)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "SubscriptionNotFound"


def test_an_unknown_api_version_is_refused_with_the_supported_ones(api: Api) -> None:
    r = api.call("GET", "/subscriptions", query="api-version=2099-01-01")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert "2022-12-01" in r.json()["error"]["message"]


def test_subscriptions_need_a_token(api: Api) -> None:
    del api.client.headers["Authorization"]
    assert api.call("GET", "/subscriptions", query=SUBS_API).status_code == 401


def test_locations_and_tenants(api: Api) -> None:
    r = api.call("GET", f"/subscriptions/{SUB}/locations", query=SUBS_API)
    assert r.status_code == 200, r.text
    names = {v["displayName"]: v["name"] for v in r.json()["value"]}
    assert names["East US"] == "eastus" and names["West Europe"] == "westeurope"
    r = api.call("GET", "/tenants", query=SUBS_API)
    assert [t["tenantId"] for t in r.json()["value"]] == [TENANT]


def test_the_cloud_metadata_needs_no_token_and_points_at_this_api(api: Api) -> None:
    del api.client.headers["Authorization"]
    r = api.call("GET", "/metadata/endpoints", query="api-version=2022-09-01")
    assert r.status_code == 200, r.text
    assert r.json()["resourceManager"] == "https://testserver/"
    assert r.json()["authentication"]["loginEndpoint"] == "https://testserver"
    listing = api.call("GET", "/metadata/endpoints", query="api-version=2020-06-01").json()
    assert listing == [r.json()]
    assert (
        api.call("GET", "/metadata/endpoints", query="").json()["error"]["code"]
        == "MissingApiVersionParameter"
    )


@pytest.mark.parametrize("location", ["eastus", "East US", "WESTUS2"])
def test_groups_and_caches_take_a_region_by_name_or_display_name(api: Api, location: str) -> None:
    r = api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": location}, GROUPS_API)
    assert r.status_code == 201, r.text
    r = api.call("PUT", CLUSTER, {**CLUSTER_BODY, "location": location})
    assert r.status_code == 201, r.text


def test_an_unknown_location_is_refused_and_nothing_is_created(api: Api) -> None:
    r = api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "mars"}, GROUPS_API)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "LocationNotAvailableForResourceGroup"
    assert api.call("GET", f"/subscriptions/{SUB}/resourcegroups/rg1", query=GROUPS_API).status_code == 404
    api.call("PUT", f"/subscriptions/{SUB}/resourcegroups/rg1", {"location": "eastus"}, GROUPS_API)
    r = api.call("PUT", CLUSTER, {**CLUSTER_BODY, "location": "mars"})
    assert r.status_code == 400
    assert (r.json()["error"]["code"], r.json()["error"]["target"]) == (
        "LocationNotAvailableForResourceType",
        "location",
    )
    assert api.call("GET", CLUSTER).status_code == 404
