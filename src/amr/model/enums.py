"""ARM enums for Microsoft.Cache/redisEnterprise (reference §2.10), as our domain values."""

from __future__ import annotations

import enum


class ProvisioningState(enum.StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    CREATING = "Creating"
    UPDATING = "Updating"
    DELETING = "Deleting"

    @property
    def busy(self) -> bool:
        return self in (ProvisioningState.CREATING, ProvisioningState.UPDATING, ProvisioningState.DELETING)


class ResourceState(enum.StrEnum):
    RUNNING = "Running"
    CREATING = "Creating"
    CREATE_FAILED = "CreateFailed"
    UPDATING = "Updating"
    UPDATE_FAILED = "UpdateFailed"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    SCALING = "Scaling"
    SCALING_FAILED = "ScalingFailed"


class ClusteringPolicy(enum.StrEnum):
    ENTERPRISE_CLUSTER = "EnterpriseCluster"
    OSS_CLUSTER = "OSSCluster"
    NO_CLUSTER = "NoCluster"

    @property
    def cluster_mode(self) -> bool:
        return self is not ClusteringPolicy.NO_CLUSTER


class EvictionPolicy(enum.StrEnum):
    ALL_KEYS_LFU = "AllKeysLFU"
    ALL_KEYS_LRU = "AllKeysLRU"
    ALL_KEYS_RANDOM = "AllKeysRandom"
    VOLATILE_LRU = "VolatileLRU"
    VOLATILE_LFU = "VolatileLFU"
    VOLATILE_TTL = "VolatileTTL"
    VOLATILE_RANDOM = "VolatileRandom"
    NO_EVICTION = "NoEviction"


class ClientProtocol(enum.StrEnum):
    ENCRYPTED = "Encrypted"
    PLAINTEXT = "Plaintext"


class Toggle(enum.StrEnum):
    """The Enabled/Disabled pairs ARM uses for highAvailability, publicNetworkAccess and
    accessKeysAuthentication."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"


class TlsVersion(enum.StrEnum):
    V1_0 = "1.0"
    V1_1 = "1.1"
    V1_2 = "1.2"


class AofFrequency(enum.StrEnum):
    ONE_SECOND = "1s"
    ALWAYS = "always"


class RdbFrequency(enum.StrEnum):
    ONE_HOUR = "1h"
    SIX_HOURS = "6h"
    TWELVE_HOURS = "12h"


class DeferUpgrade(enum.StrEnum):
    DEFERRED = "Deferred"
    NOT_DEFERRED = "NotDeferred"


class OperationStatus(enum.StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def done(self) -> bool:
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELED)
