"""The resources amr manages: resource groups, clusters, databases and long-running operations.

These are our model, not wire JSON: the API maps ARM JSON to and from them in one module per type.
Names of groups and clusters are case-insensitive in ARM; ``key`` fields hold the lower-cased form
used for lookups while ``name`` keeps what the user typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amr.model.enums import (
    AofFrequency,
    ClientProtocol,
    ClusteringPolicy,
    DeferUpgrade,
    EvictionPolicy,
    OperationStatus,
    ProvisioningState,
    RdbFrequency,
    ResourceState,
    TlsVersion,
    Toggle,
)
from amr.model.node import Role

CLUSTER_TYPE = "Microsoft.Cache/redisEnterprise"
DATABASE_TYPE = "Microsoft.Cache/redisEnterprise/databases"
FIREWALL_RULE_TYPE = "Microsoft.Cache/redisEnterprise/firewallRules"


def group_id(subscription_id: str, group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}"


def cluster_id(subscription_id: str, group: str, cluster: str) -> str:
    return f"{group_id(subscription_id, group)}/providers/{CLUSTER_TYPE}/{cluster}"


def database_id(subscription_id: str, group: str, cluster: str, database: str) -> str:
    return f"{cluster_id(subscription_id, group, cluster)}/databases/{database}"


def lookup_key(*parts: str) -> str:
    """The case-insensitive identity of a resource, from its path names."""
    return "/".join(p.lower() for p in parts)


@dataclass(frozen=True)
class ResourceGroup:
    subscription_id: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: ProvisioningState = ProvisioningState.SUCCEEDED

    @property
    def key(self) -> str:
        return lookup_key(self.subscription_id, self.name)

    @property
    def id(self) -> str:
        return group_id(self.subscription_id, self.name)


@dataclass(frozen=True)
class Cluster:
    """A Microsoft.Cache/redisEnterprise resource."""

    subscription_id: str
    resource_group: str
    name: str
    location: str
    sku_name: str
    public_network_access: Toggle
    high_availability: Toggle = Toggle.ENABLED
    minimum_tls_version: TlsVersion = TlsVersion.V1_2
    tags: dict[str, str] = field(default_factory=dict)
    host_name: str = "localhost"
    provisioning_state: ProvisioningState = ProvisioningState.CREATING
    resource_state: ResourceState = ResourceState.CREATING
    created_at: str = ""

    @property
    def key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, self.name)

    @property
    def group_key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group)

    @property
    def id(self) -> str:
        return cluster_id(self.subscription_id, self.resource_group, self.name)


@dataclass(frozen=True)
class Persistence:
    aof_enabled: bool = False
    aof_frequency: AofFrequency | None = None
    rdb_enabled: bool = False
    rdb_frequency: RdbFrequency | None = None


@dataclass(frozen=True)
class NodeAssignment:
    """A node of a database: its host-unique name, shard, role and TCP port.

    The port is both the node's internal port (on the internal loopback alias) and, for OSSCluster,
    the public per-node port the gateway listens on and the node announces.
    """

    name: str
    shard: int
    role: Role
    port: int


@dataclass(frozen=True)
class Database:
    """A Microsoft.Cache/redisEnterprise/databases resource (always named ``default``)."""

    subscription_id: str
    resource_group: str
    cluster_name: str
    uid: str  # host-unique, names node directories and processes
    port: int
    primary_key: str
    secondary_key: str
    name: str = "default"
    client_protocol: ClientProtocol = ClientProtocol.ENCRYPTED
    clustering_policy: ClusteringPolicy = ClusteringPolicy.OSS_CLUSTER
    eviction_policy: EvictionPolicy = EvictionPolicy.VOLATILE_LRU
    persistence: Persistence = field(default_factory=Persistence)
    access_keys_authentication: Toggle = Toggle.DISABLED
    defer_upgrade: DeferUpgrade = DeferUpgrade.NOT_DEFERRED
    nodes: tuple[NodeAssignment, ...] = ()
    provisioning_state: ProvisioningState = ProvisioningState.CREATING
    resource_state: ResourceState = ResourceState.CREATING
    status_message: str = ""
    shards_for_sku: int = 1
    created_at: str = ""

    @property
    def key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, self.cluster_name, self.name)

    @property
    def cluster_key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, self.cluster_name)

    @property
    def id(self) -> str:
        return database_id(self.subscription_id, self.resource_group, self.cluster_name, self.name)

    @property
    def shard_count(self) -> int:
        return len({n.shard for n in self.nodes}) or 1


@dataclass(frozen=True)
class FirewallRule:
    """An amr extension in ARM shape (as classic Azure Cache for Redis has them): sources in
    [start_ip, end_ip] may connect to the cluster's database."""

    subscription_id: str
    resource_group: str
    cluster_name: str
    name: str
    start_ip: str
    end_ip: str

    @property
    def key(self) -> str:
        return lookup_key(
            self.subscription_id, self.resource_group, self.cluster_name, "firewallrules", self.name
        )

    @property
    def cluster_key(self) -> str:
        return lookup_key(self.subscription_id, self.resource_group, self.cluster_name)

    @property
    def id(self) -> str:
        return f"{cluster_id(self.subscription_id, self.resource_group, self.cluster_name)}/firewallRules/{self.name}"


@dataclass(frozen=True)
class OperationError:
    code: str
    message: str


@dataclass(frozen=True)
class Operation:
    """A long-running operation, polled through operationsStatus (and operationresults)."""

    id: str
    subscription_id: str
    location: str
    resource_id: str
    action: str  # e.g. "create", "update", "delete", "flush", "restart" (amr.logic.operations.rolling)
    status: OperationStatus = OperationStatus.IN_PROGRESS
    start_time: str = ""
    end_time: str | None = None
    error: OperationError | None = None
    # A restart: its nodes' process ids when it began. A node whose pid differs has been restarted,
    # which is how a control plane that crashed halfway carries on where it stopped.
    node_pids: dict[str, int] = field(default_factory=dict)
    # What the operation did, when there is more to say than its status (a restart without HA).
    message: str = ""
