"""ARM JSON <-> model for resource groups, clusters, databases and operations."""

from __future__ import annotations

import dataclasses
from typing import Any

from amr.api.wire import as_bool, as_enum, as_int, as_object, as_str, as_tags, field, has_field
from amr.errors import InvalidParameter
from amr.logic.arm.locations import location_key, validate_cache_location, validate_group_location
from amr.logic.arm.validation import DatabaseRequestExtras, validate_minimum_tls, validate_sku
from amr.model.enums import (
    AofFrequency,
    ClientProtocol,
    ClusteringPolicy,
    DeferUpgrade,
    EvictionPolicy,
    RdbFrequency,
    TlsVersion,
    Toggle,
)
from amr.model.resources import (
    CLUSTER_TYPE,
    DATABASE_TYPE,
    Cluster,
    Database,
    Operation,
    Persistence,
    ResourceGroup,
)

REDIS_VERSION = "7.2"  # what Valkey 8 reports as redis_version


# --- resource groups -------------------------------------------------------------------------


def parse_group(body: dict[str, Any], subscription_id: str, name: str) -> ResourceGroup:
    location = as_str(field(body, "location"), "location")
    if not location:
        raise InvalidParameter(
            "'location' is required for a resource group (for example 'eastus').", "location"
        )
    validate_group_location(location)
    return ResourceGroup(subscription_id, name, location, as_tags(field(body, "tags")) or {})


def render_group(group: ResourceGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "tags": group.tags,
        "properties": {"provisioningState": group.provisioning_state.value},
    }


# --- clusters ------------------------------------------------------------------------------------


def parse_cluster_put(
    body: dict[str, Any], subscription_id: str, group: str, name: str, host_name: str
) -> Cluster:
    """A cluster from a PUT body (a full description, as ARM PUT is)."""
    location = as_str(field(body, "location"), "location")
    if not location:
        raise InvalidParameter("'location' is required (for example 'eastus').", "location")
    validate_cache_location(location)
    sku = as_object(field(body, "sku"), "sku")
    sku_name = as_str(field(sku, "name"), "sku.name")
    if not sku_name:
        raise InvalidParameter("'sku.name' is required (for example 'Balanced_B0').", "sku.name")
    sku_name = validate_sku(sku_name).name  # the catalogue's spelling
    props = as_object(field(body, "properties"), "properties")
    pna = as_enum(field(props, "publicNetworkAccess"), Toggle, "properties.publicNetworkAccess")
    if pna is None:
        raise InvalidParameter(
            "'properties.publicNetworkAccess' is required in a cache PUT. Allowed values: Enabled, Disabled.",
            "properties.publicNetworkAccess",
        )
    tls = (
        as_enum(field(props, "minimumTlsVersion"), TlsVersion, "properties.minimumTlsVersion")
        or TlsVersion.V1_2
    )
    validate_minimum_tls(tls)
    _refuse_unsupported_cluster_fields(body, props)
    return Cluster(
        subscription_id=subscription_id,
        resource_group=group,
        name=name,
        location=location,
        sku_name=sku_name,
        public_network_access=pna,
        high_availability=as_enum(field(props, "highAvailability"), Toggle, "properties.highAvailability")
        or Toggle.ENABLED,
        minimum_tls_version=tls,
        tags=as_tags(field(body, "tags")) or {},
        host_name=host_name,
    )


def parse_cluster_patch(body: dict[str, Any], current: Cluster) -> Cluster:
    """The cluster as a PATCH body would leave it."""
    changes: dict[str, Any] = {}
    if has_field(body, "sku"):
        sku_name = as_str(field(as_object(field(body, "sku"), "sku"), "name"), "sku.name")
        if sku_name:
            changes["sku_name"] = validate_sku(sku_name).name
    if has_field(body, "tags"):
        changes["tags"] = as_tags(field(body, "tags")) or {}
    props = as_object(field(body, "properties"), "properties")
    pna = as_enum(field(props, "publicNetworkAccess"), Toggle, "properties.publicNetworkAccess")
    if pna is not None:
        changes["public_network_access"] = pna
    ha = as_enum(field(props, "highAvailability"), Toggle, "properties.highAvailability")
    if ha is not None:
        changes["high_availability"] = ha
    tls = as_enum(field(props, "minimumTlsVersion"), TlsVersion, "properties.minimumTlsVersion")
    if tls is not None:
        validate_minimum_tls(tls)
        changes["minimum_tls_version"] = tls
    _refuse_unsupported_cluster_fields(body, props)
    return dataclasses.replace(current, **changes)


def _refuse_unsupported_cluster_fields(body: dict[str, Any], props: dict[str, Any]) -> None:
    encryption = as_object(field(props, "encryption"), "properties.encryption")
    if field(encryption, "customerManagedKeyEncryption"):
        raise InvalidParameter(
            "Customer-managed key encryption is not available in amr; omit properties.encryption.",
            "properties.encryption",
        )
    identity = as_object(field(body, "identity"), "identity")
    kind = as_str(field(identity, "type"), "identity.type")
    if kind and kind.lower() != "none":
        raise InvalidParameter(
            "Managed identities are not available in amr; omit identity or set identity.type to None.",
            "identity.type",
        )


def render_cluster(cluster: Cluster) -> dict[str, Any]:
    ha = cluster.high_availability is Toggle.ENABLED
    return {
        "id": cluster.id,
        "name": cluster.name,
        "type": CLUSTER_TYPE,
        "location": cluster.location,
        "tags": cluster.tags,
        "kind": "v2",
        "sku": {"name": cluster.sku_name},
        "identity": {"type": "None"},
        "properties": {
            "hostName": cluster.host_name,
            "provisioningState": cluster.provisioning_state.value,
            "resourceState": cluster.resource_state.value,
            "redisVersion": REDIS_VERSION.split(".")[0],
            "highAvailability": cluster.high_availability.value,
            "minimumTlsVersion": cluster.minimum_tls_version.value,
            "publicNetworkAccess": cluster.public_network_access.value,
            "redundancyMode": "LR" if ha else "None",
            "encryption": {},
            "privateEndpointConnections": [],
        },
    }


# --- databases -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatabaseRequest:
    """The database fields a request set (None = not given) plus what is only checked."""

    fields: dict[str, Any]
    port: int | None
    extras: DatabaseRequestExtras


def parse_database_request(body: dict[str, Any], base: Persistence | None = None) -> DatabaseRequest:
    """The fields a database PUT or PATCH body sets. With ``base`` (PATCH), a partial persistence
    object is merged into it, as a JSON merge patch would."""
    props = as_object(field(body, "properties"), "properties")
    p = "properties."
    fields: dict[str, Any] = {}
    for key, name, kind in (
        ("client_protocol", "clientProtocol", ClientProtocol),
        ("clustering_policy", "clusteringPolicy", ClusteringPolicy),
        ("eviction_policy", "evictionPolicy", EvictionPolicy),
        ("access_keys_authentication", "accessKeysAuthentication", Toggle),
        ("defer_upgrade", "deferUpgrade", DeferUpgrade),
    ):
        value = as_enum(field(props, name), kind, p + name)
        if value is not None:
            fields[key] = value
    if has_field(props, "persistence"):
        fields["persistence"] = parse_persistence(
            as_object(field(props, "persistence"), p + "persistence"), base
        )
    port = as_int(field(props, "port"), p + "port")
    modules = field(props, "modules")
    names: list[str] = []
    if modules is not None:
        if not isinstance(modules, list):
            raise InvalidParameter("'properties.modules' must be an array of {name, args}.", p + "modules")
        for i, module in enumerate(modules):
            module_name = as_str(
                field(as_object(module, f"{p}modules[{i}]"), "name"), f"{p}modules[{i}].name"
            )
            if not module_name:
                raise InvalidParameter(f"'{p}modules[{i}].name' is required.", f"{p}modules[{i}].name")
            names.append(module_name)
    geo = field(props, "geoReplication")
    has_geo = bool(as_object(geo, p + "geoReplication")) if geo is not None else False
    return DatabaseRequest(fields, port, DatabaseRequestExtras(tuple(names), has_geo))


def parse_persistence(obj: dict[str, Any], base: Persistence | None = None) -> Persistence:
    p = "properties.persistence."
    base = base or Persistence()
    aof = as_bool(field(obj, "aofEnabled"), p + "aofEnabled")
    rdb = as_bool(field(obj, "rdbEnabled"), p + "rdbEnabled")
    aof_freq = as_enum(field(obj, "aofFrequency"), AofFrequency, p + "aofFrequency")
    rdb_freq = as_enum(field(obj, "rdbFrequency"), RdbFrequency, p + "rdbFrequency")
    aof_on = base.aof_enabled if aof is None else aof
    rdb_on = base.rdb_enabled if rdb is None else rdb
    return Persistence(
        aof_enabled=aof_on,
        aof_frequency=(aof_freq or base.aof_frequency or AofFrequency.ONE_SECOND) if aof_on else None,
        rdb_enabled=rdb_on,
        rdb_frequency=(rdb_freq or base.rdb_frequency or RdbFrequency.ONE_HOUR) if rdb_on else None,
    )


def render_persistence(persistence: Persistence) -> dict[str, Any]:
    out: dict[str, Any] = {"aofEnabled": persistence.aof_enabled, "rdbEnabled": persistence.rdb_enabled}
    if persistence.aof_frequency:
        out["aofFrequency"] = persistence.aof_frequency.value
    if persistence.rdb_frequency:
        out["rdbFrequency"] = persistence.rdb_frequency.value
    return out


def render_database(db: Database) -> dict[str, Any]:
    props: dict[str, Any] = {
        "clientProtocol": db.client_protocol.value,
        "port": db.port,
        "clusteringPolicy": db.clustering_policy.value,
        "evictionPolicy": db.eviction_policy.value,
        "persistence": render_persistence(db.persistence),
        "modules": [],
        "deferUpgrade": db.defer_upgrade.value,
        "accessKeysAuthentication": db.access_keys_authentication.value,
        "provisioningState": db.provisioning_state.value,
        "resourceState": db.resource_state.value,
        "redisVersion": REDIS_VERSION,
        # amr extensions (ignored by Azure clients): what actually runs.
        "shardCount": db.shard_count,
    }
    if db.status_message:
        props["statusMessage"] = db.status_message
    return {
        "id": db.id,
        "name": db.name,
        "type": DATABASE_TYPE,
        "properties": props,
    }


# --- operations ----------------------------------------------------------------------------------


def operation_status_path(op: Operation) -> str:
    return (
        f"/subscriptions/{op.subscription_id}/providers/Microsoft.Cache/locations/"
        f"{location_key(op.location)}/operationsStatus/{op.id}"
    )


def render_operation(op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": operation_status_path(op),
        "name": op.id,
        "status": op.status.value,
        "startTime": op.start_time,
        "endTime": op.end_time or "0001-01-01T00:00:00+00:00",
    }
    if op.error:
        body["error"] = {"code": op.error.code, "message": op.error.message}
    if op.message:
        # An amr extension (clients read only "status" and "error"): what a restart did.
        body["properties"] = {"message": op.message}
    return body
