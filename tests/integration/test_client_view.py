"""What client libraries see of a database, through the real TLS endpoints: the read-only
introspection clients ask for (ACL WHOAMI, MODULE LIST ...) answers on every clustering policy,
while amr's own users stay hidden (ACL LIST, USERS, GETUSER ... answer NOPERM)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.integration.amr_service import AmrService, create_cache, running_service
from tests.integration.ha_load import admin_client, routes_of


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service()


@pytest.fixture(scope="module")
def caches(service: AmrService) -> Iterator[dict[str, redis.Redis]]:
    """One database per clustering policy: a 2-shard OSSCluster with replicas, a 2-shard
    EnterpriseCluster and a NoCluster one."""
    clients = {
        "OSSCluster": create_cache(service, "oss", "Balanced_B3", "OSSCluster", ha="Enabled"),
        "EnterpriseCluster": create_cache(service, "ent", "Balanced_B3", "EnterpriseCluster"),
        "NoCluster": create_cache(service, "solo", "Balanced_B0", "NoCluster"),
    }
    yield clients
    for client in clients.values():
        client.close()


INTROSPECTION = [
    ("ACL", "WHOAMI"),
    ("ACL", "CAT"),
    ("ACL", "CAT", "read"),
    ("ACL", "GENPASS"),
    ("MODULE", "LIST"),
]
KEPT = [
    ("ACL", "LIST"),
    ("ACL", "USERS"),
    ("ACL", "GETUSER", "default"),
    ("ACL", "GETUSER", "amr-admin"),
    ("ACL", "DRYRUN", "amr-admin", "GET", "k"),
    ("ACL", "LOG"),
    ("ACL", "LOG", "RESET"),
    ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all"),
    ("ACL", "DELUSER", "amr-gateway"),
]
# Refused by the engine before its ACL looks (enable-module-command is off), and by the ACL too.
MODULE_CHANGES = [
    ("MODULE", "LOAD", "/tmp/x.so"),
    ("MODULE", "LOADEX", "/tmp/x.so"),
    ("MODULE", "UNLOAD", "x"),
]


@pytest.mark.parametrize("policy", ["OSSCluster", "EnterpriseCluster", "NoCluster"])
def test_read_only_introspection_answers_and_amrs_users_stay_hidden(
    service: AmrService, caches: dict[str, redis.Redis], policy: str
) -> None:
    r = caches[policy]
    # What client libraries ask for, with redis-py's own methods.
    assert r.acl_whoami() == "default"
    assert "keyspace" in r.acl_cat() and "get" in r.acl_cat("read")
    assert len(r.acl_genpass()) == 64
    assert r.module_list() == []
    for command in INTROSPECTION:
        r.execute_command(*command)
    for command in KEPT:
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.execute_command(*command)
    for command in MODULE_CHANGES:
        with pytest.raises(redis.exceptions.ResponseError, match="NOPERM|not allowed"):
            r.execute_command(*command)
    # The refused commands changed nothing: amr's users are all there, and no other.
    port = r.connection_pool.connection_kwargs["port"]
    admin = admin_client(service.home, routes_of(service.home, port)["target"])
    try:
        assert sorted(admin.acl_users()) == [
            "amr-admin",
            "amr-gateway",
            "amr-ha",
            "amr-replication",
            "default",
        ]
    finally:
        admin.close()
