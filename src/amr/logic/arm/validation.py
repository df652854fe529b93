"""Validation rules that Azure applies to clusters and databases.

Each ``validate_*`` decides whether a request is allowed and raises an ArmError (code, message naming
the field and what is allowed) when it is not. Type and enum checks of the wire JSON happen at the
API edge; these rules are about names, combinations and changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amr.errors import ArmError, Conflict, InvalidParameter
from amr.logic.arm.locations import location_key
from amr.model.enums import ClusteringPolicy, TlsVersion, Toggle
from amr.model.resources import Cluster, Database, Persistence
from amr.model.sku import LEGACY_SKU_NAMES, SKUS, Sku, sku_by_name

_CLUSTER_NAME = re.compile(r"^(?=.{1,60}$)[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_GROUP_NAME = re.compile(r"^[-\w._()]{1,90}$")
DATABASE_NAME = "default"


def validate_group_name(name: str) -> None:
    """A resource group name: 1-90 letters, digits, underscores, hyphens, periods and parentheses,
    not ending in a period."""
    if not _GROUP_NAME.match(name) or name.endswith("."):
        raise ArmError(
            "InvalidResourceGroupName",
            f"Resource group name '{name}' is invalid. It must be 1-90 characters of letters, digits, "
            "underscores, hyphens, periods and parentheses, and must not end in a period.",
            400,
        )


def validate_cluster_name(name: str) -> None:
    """A cluster name: 1-60 letters and digits, with single hyphens only between them."""
    if not _CLUSTER_NAME.match(name):
        raise InvalidParameter(
            f"The cache name '{name}' is invalid. It must be 1-60 characters of letters, digits and "
            "single hyphens, and must start and end with a letter or digit.",
            target="clusterName",
        )


def validate_database_name(name: str) -> None:
    """Only the database ``default`` exists in Azure Managed Redis."""
    if name != DATABASE_NAME:
        raise InvalidParameter(
            f"The database name '{name}' is invalid. A cache has exactly one database, named 'default'.",
            target="databaseName",
        )


def validate_sku(name: str) -> Sku:
    """The SKU must be an Azure Managed Redis in-memory SKU; Flash and legacy Enterprise SKUs are
    refused because amr cannot run them."""
    sku = sku_by_name(name)
    if name.lower() in {n.lower() for n in LEGACY_SKU_NAMES}:
        raise InvalidParameter(
            f"The SKU '{name}' is a legacy Enterprise SKU, which amr does not offer. "
            "Use a Balanced_, MemoryOptimized_ or ComputeOptimized_ SKU.",
            target="sku.name",
        )
    if sku is None:
        allowed = ", ".join(s.name for s in SKUS if not s.flash)
        raise InvalidParameter(
            f"The SKU '{name}' is not valid. Allowed values: {allowed}.", target="sku.name"
        )
    if sku.flash:
        raise InvalidParameter(
            f"The SKU '{name}' is a FlashOptimized SKU, which needs NVMe-backed Redis on Flash; amr runs "
            "in-memory SKUs only (Balanced_, MemoryOptimized_, ComputeOptimized_).",
            target="sku.name",
        )
    return sku


def validate_minimum_tls(version: TlsVersion) -> None:
    """TLS 1.0 and 1.1 are obsolete in Azure Managed Redis: only 1.2 is accepted."""
    if version is not TlsVersion.V1_2:
        raise InvalidParameter(
            f"minimumTlsVersion '{version.value}' is not supported: TLS 1.0 and 1.1 are obsolete. "
            "Use '1.2' (TLS 1.2 and 1.3 are accepted).",
            target="properties.minimumTlsVersion",
        )


def validate_cluster_change(current: Cluster, new: Cluster) -> None:
    """Changes Azure refuses on an existing cluster."""
    if current.high_availability is Toggle.ENABLED and new.high_availability is Toggle.DISABLED:
        raise InvalidParameter(
            "highAvailability cannot be changed from Enabled to Disabled; it can only be enabled.",
            target="properties.highAvailability",
        )
    if location_key(new.location) != location_key(current.location):
        raise InvalidParameter(f"location cannot be changed (it is '{current.location}').", target="location")


def validate_persistence(persistence: Persistence) -> None:
    """AOF and RDB persistence are mutually exclusive; each needs a frequency when enabled."""
    if persistence.aof_enabled and persistence.rdb_enabled:
        raise InvalidParameter(
            "persistence: aofEnabled and rdbEnabled cannot both be true; choose AOF or RDB persistence.",
            target="properties.persistence",
        )


@dataclass(frozen=True)
class DatabaseRequestExtras:
    """Parts of a database request that amr does not store but must check."""

    modules: tuple[str, ...] = ()
    geo_replication: bool = False


def validate_database_create(db: Database, extras: DatabaseRequestExtras) -> None:
    """Rules for a new database."""
    validate_persistence(db.persistence)
    if extras.modules:
        raise ArmError(
            "NotSupported",
            f"Modules ({', '.join(extras.modules)}) are not available in this amr version; "
            "create the database without properties.modules.",
            400,
            target="properties.modules",
        )
    if extras.geo_replication:
        raise ArmError(
            "NotSupported",
            "Active geo-replication is not available in this amr version; create the database without "
            "properties.geoReplication.",
            400,
            target="properties.geoReplication",
        )


def validate_database_change(current: Database, new: Database, extras: DatabaseRequestExtras) -> None:
    """Changes Azure refuses on an existing database (create-only fields)."""
    validate_persistence(new.persistence)
    if new.port != current.port:
        raise InvalidParameter(
            f"port is set at creation and cannot be changed (it is {current.port}).", target="properties.port"
        )
    if extras.modules:
        raise InvalidParameter(
            "modules are set at creation and cannot be changed.", target="properties.modules"
        )
    if extras.geo_replication:
        raise InvalidParameter(
            "geoReplication is set at creation and cannot be changed here.",
            target="properties.geoReplication",
        )
    validate_clustering_change(current.clustering_policy, new.clustering_policy)


def validate_clustering_change(current: ClusteringPolicy, new: ClusteringPolicy) -> None:
    """As Azure: only a NoCluster database may change its clustering policy (to OSSCluster or
    EnterpriseCluster, keeping its data); a clustered one never changes back or to the other
    clustered policy."""
    if new is current or current is ClusteringPolicy.NO_CLUSTER:
        return
    raise InvalidParameter(
        f"clusteringPolicy cannot be changed from {current.value} to {new.value}: only a NoCluster "
        "database can change its clustering policy (to OSSCluster or EnterpriseCluster). Delete and "
        f"recreate the database to run it as {new.value}.",
        target="properties.clusteringPolicy",
    )


def validate_not_busy(kind: str, name: str, state_busy: bool, state: str) -> None:
    """A resource with an operation in progress takes no other change (Azure answers 409)."""
    if state_busy:
        raise Conflict(
            f"The {kind} '{name}' is busy ({state}); wait for the current operation to finish and retry."
        )
