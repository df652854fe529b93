"""The official azure-mgmt-redisenterprise SDK against amr, and what its calls do on the data path."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import (
    Cluster,
    ClusterUpdate,
    Database,
    DatabaseUpdate,
    RegenerateKeyParameters,
    Sku,
)

from tests.integration.amr_service import AMR, AmrService, wait_until

GROUP = "rg-sdk"
CACHE = "sdk-cache"


class AmrCliCredential:
    """A TokenCredential that asks the amr CLI for a token, as `az account get-access-token` would."""

    def __init__(self, service: AmrService) -> None:
        self.service = service
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.calls += 1
        out = subprocess.run(
            [*AMR, "account", "get-access-token"],
            env=self.service.env,
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(out.stdout)
        return AccessToken(data["accessToken"], int(data["expires_on"]))


@pytest.fixture(scope="module")
def client(amr_service: AmrService) -> Iterator[RedisEnterpriseManagementClient]:
    amr_service.amr("group", "create", "-n", GROUP, "-l", "westus2", check=True)
    sdk = RedisEnterpriseManagementClient(
        AmrCliCredential(amr_service),
        amr_service.subscription,
        base_url=amr_service.base_url,
        connection_verify=amr_service.ca_file,
    )
    yield sdk
    sdk.close()


def _redis(service: AmrService, port: int, password: str) -> redis.Redis:
    return redis.Redis("localhost", port, password=password, ssl=True, ssl_ca_certs=service.ca_file)


def test_sdk_lifecycle(amr_service: AmrService, client: RedisEnterpriseManagementClient) -> None:
    started = time.monotonic()
    cluster = client.redis_enterprise.begin_create(
        GROUP,
        CACHE,
        Cluster(
            location="westus2",
            sku=Sku(name="Balanced_B0"),
            minimum_tls_version="1.2",
            public_network_access="Enabled",
        ),
    ).result()
    assert cluster.provisioning_state == "Succeeded"
    assert cluster.resource_state == "Running"
    assert cluster.host_name == "localhost"
    assert cluster.high_availability == "Enabled"

    db = client.databases.begin_create(
        GROUP, CACHE, "default", Database(access_keys_authentication="Enabled", eviction_policy="AllKeysLRU")
    ).result()
    assert db.provisioning_state == "Succeeded" and db.resource_state == "Running"
    assert db.clustering_policy == "OSSCluster" and db.client_protocol == "Encrypted"
    # Two creates, each a 1 s Retry-After plus the node start: the pollers finish in seconds.
    assert time.monotonic() - started < 15

    assert client.redis_enterprise.get(GROUP, CACHE).name == CACHE
    assert [c.name for c in client.redis_enterprise.list_by_resource_group(GROUP)] == [CACHE]
    assert CACHE in [c.name for c in client.redis_enterprise.list()]
    assert [d.name for d in client.databases.list_by_cluster(GROUP, CACHE)] == ["default"]

    keys = client.databases.list_keys(GROUP, CACHE, "default")
    r = _redis(amr_service, db.port, keys.primary_key)
    assert r.ping() is True
    r.set("k", "v")
    pids = amr_service.node_pids()
    assert len(pids) == 2

    # Update applies live: the policy changes on the running node, nothing restarts.
    updated = client.databases.begin_update(
        GROUP, CACHE, "default", DatabaseUpdate(eviction_policy="NoEviction")
    ).result()
    assert updated.eviction_policy == "NoEviction"
    assert r.info("memory")["maxmemory_policy"] == "noeviction"
    cluster = client.redis_enterprise.begin_update(
        GROUP, CACHE, ClusterUpdate(tags={"team": "cache"})
    ).result()
    assert cluster.tags == {"team": "cache"}
    assert amr_service.node_pids() == pids

    # Regenerating the primary key: the old key fails for new connections at once, the new works.
    new_keys = client.databases.begin_regenerate_key(
        GROUP, CACHE, "default", RegenerateKeyParameters(key_type="Primary")
    ).result()
    assert new_keys.primary_key != keys.primary_key
    assert new_keys.secondary_key == keys.secondary_key
    with pytest.raises(redis.AuthenticationError):
        _redis(amr_service, db.port, keys.primary_key).ping()
    assert _redis(amr_service, db.port, new_keys.primary_key).get("k") == b"v"
    assert _redis(amr_service, db.port, new_keys.secondary_key).ping() is True

    # Flush empties the data.
    client.databases.begin_flush(GROUP, CACHE, "default").result()
    assert _redis(amr_service, db.port, new_keys.primary_key).dbsize() == 0

    # Refused changes come back as errors the SDK raises, and change nothing.
    with pytest.raises(HttpResponseError) as refused:
        client.redis_enterprise.begin_update(
            GROUP, CACHE, ClusterUpdate(high_availability="Disabled")
        ).result()
    assert "highAvailability" in str(refused.value)
    assert client.redis_enterprise.get(GROUP, CACHE).high_availability == "Enabled"

    client.redis_enterprise.begin_delete(GROUP, CACHE).result()
    with pytest.raises(ResourceNotFoundError):
        client.redis_enterprise.get(GROUP, CACHE)
    wait_until(lambda: not amr_service.node_pids(), 10, what="nodes to stop")


def test_sdk_nocluster_plaintext_without_ha(
    amr_service: AmrService, client: RedisEnterpriseManagementClient
) -> None:
    client.redis_enterprise.begin_create(
        GROUP,
        "plain",
        Cluster(
            location="westus2",
            sku=Sku(name="Balanced_B1"),
            high_availability="Disabled",
            public_network_access="Enabled",
        ),
    ).result()
    db = client.databases.begin_create(
        GROUP,
        "plain",
        "default",
        Database(
            client_protocol="Plaintext", clustering_policy="NoCluster", access_keys_authentication="Enabled"
        ),
    ).result()
    keys = client.databases.list_keys(GROUP, "plain", "default")
    r = redis.Redis("localhost", db.port, password=keys.primary_key)
    assert r.ping() is True
    assert r.info("cluster")["cluster_enabled"] == 0
    assert r.info("memory")["maxmemory"] == 1024**3
    assert len(amr_service.node_pids()) == 1

    # Scaling within one shard is a memory change, applied live.
    skus = {s.name: s.size_in_gb for s in client.redis_enterprise.list_skus_for_scaling(GROUP, "plain").skus}
    assert skus["Balanced_B0"] == 0.5 and "Balanced_B1" not in skus
    assert not any(name.startswith("FlashOptimized") for name in skus)
    pid = amr_service.node_pids()
    scaled = client.redis_enterprise.begin_update(
        GROUP, "plain", ClusterUpdate(sku=Sku(name="Balanced_B0"))
    ).result()
    assert scaled.sku.name == "Balanced_B0" and scaled.resource_state == "Running"
    assert r.info("memory")["maxmemory"] == 512 * 1024**2
    assert amr_service.node_pids() == pid

    # Enabling HA later adds a replica that follows the primary.
    client.redis_enterprise.begin_update(GROUP, "plain", ClusterUpdate(high_availability="Enabled")).result()
    assert len(amr_service.node_pids()) == 2
    wait_until(lambda: r.info("replication")["connected_slaves"] == 1, 10, what="the replica to connect")

    # Access keys disabled: the key no longer authenticates.
    client.databases.begin_update(
        GROUP, "plain", "default", DatabaseUpdate(access_keys_authentication="Disabled")
    ).result()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis("localhost", db.port, password=keys.primary_key).ping()

    client.redis_enterprise.begin_delete(GROUP, "plain").result()
    wait_until(lambda: not amr_service.node_pids(), 10, what="nodes to stop")
