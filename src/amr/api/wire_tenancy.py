"""ARM JSON for what surrounds the resources: the subscription, the tenant, the regions
(Microsoft.Resources) and the cloud's metadata document (``/metadata/endpoints``).

Clients read these to find their way before they touch a resource: ``az login`` lists subscriptions,
``az cloud register`` reads the metadata document, az turns "East US" into "eastus" with the
locations list.
"""

from __future__ import annotations

from typing import Any

from amr.logic.security.token_claims import MANAGEMENT_AUDIENCES
from amr.model.regions import REGIONS, Region
from amr.model.tenancy import CLOUD_NAME, SUBSCRIPTION_DISPLAY_NAME, TENANT_DISPLAY_NAME, TENANT_DOMAIN

# The metadata document's api-versions and the shape each answers with: 2019-05-01 and 2020-06-01
# list every cloud (Terraform and Az PowerShell read a list), 2022-09-01 describes this cloud alone
# (az cloud register), 2015-01-01 is the older single document with *Endpoint keys (msrestazure).
METADATA_API_VERSIONS = ("2015-01-01", "2019-05-01", "2020-06-01", "2022-09-01")
_LISTING_VERSIONS = ("2019-05-01", "2020-06-01")

# ARM's own order, from the audiences amr's tokens accept: az asks for tokens for the first.
CLOUD_AUDIENCES = (MANAGEMENT_AUDIENCES[3], MANAGEMENT_AUDIENCES[1])


def render_subscription(subscription_id: str, tenant_id: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": subscription_id,
        "tenantId": tenant_id,
        "displayName": SUBSCRIPTION_DISPLAY_NAME,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "tags": {},
    }


def render_subscription_list(subscription_id: str, tenant_id: str) -> dict[str, Any]:
    return {
        "value": [render_subscription(subscription_id, tenant_id)],
        "count": {"type": "Total", "value": 1},
    }


def render_tenant(tenant_id: str) -> dict[str, Any]:
    return {
        "id": f"/tenants/{tenant_id}",
        "tenantId": tenant_id,
        "tenantCategory": "Home",
        "countryCode": "US",
        "displayName": TENANT_DISPLAY_NAME,
        "domains": [TENANT_DOMAIN],
        "defaultDomain": TENANT_DOMAIN,
        "tenantType": "AAD",
    }


def render_location(region: Region, subscription_id: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "regionType": "Physical",
        "regionCategory": "Recommended" if region.recommended else "Other",
        "geography": region.geography,
        "geographyGroup": region.geography_group,
        "longitude": region.longitude,
        "latitude": region.latitude,
        "physicalLocation": region.physical_location,
        "pairedRegion": [],
    }
    if region.paired_region:
        metadata["pairedRegion"] = [
            {
                "name": region.paired_region,
                "id": f"/subscriptions/{subscription_id}/locations/{region.paired_region}",
            }
        ]
    return {
        "id": f"/subscriptions/{subscription_id}/locations/{region.name}",
        "name": region.name,
        "type": "Region",
        "displayName": region.display_name,
        "regionalDisplayName": region.regional_display_name,
        "metadata": metadata,
    }


def render_location_list(subscription_id: str) -> dict[str, Any]:
    return {"value": [render_location(r, subscription_id) for r in REGIONS]}


def render_cloud_metadata(base_url: str, api_version: str) -> Any:
    """The cloud metadata document at ``api_version`` for an amr reached at ``base_url``: its
    management API is the resource manager and its token service the login endpoint."""
    base = base_url.rstrip("/")
    if api_version == "2015-01-01":
        return {
            "galleryEndpoint": "",
            "graphEndpoint": "",
            "portalEndpoint": "",
            "authentication": {"loginEndpoint": f"{base}/", "audiences": list(CLOUD_AUDIENCES)},
        }
    cloud = {
        "name": CLOUD_NAME,
        "resourceManager": f"{base}/",
        "authentication": {
            "loginEndpoint": base,
            "audiences": list(CLOUD_AUDIENCES),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        # az requires the key; amr runs none of the services these name.
        "suffixes": {},
    }
    return [cloud] if api_version in _LISTING_VERSIONS else cloud
