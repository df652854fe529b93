"""INFO through an EnterpriseCluster endpoint: one database, not clustered, its numbers summed."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.info_merge import merge_info, merge_info_texts, render_human_bytes


def _info(**sections: list[str]) -> bytes:
    return b"\r\n".join(
        b"# " + name.encode() + b"\r\n" + b"".join(line.encode() + b"\r\n" for line in lines)
        for name, lines in sections.items()
    )


def _bulk(text: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(text), text)


def _fields(text: bytes) -> dict[str, str]:
    out = {}
    for line in text.decode().split("\r\n"):
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            out[key] = value
    return out


SHARD_A = _info(
    Server=["redis_version:7.2.4", "server_mode:cluster", "process_id:11", "tcp_port:0"],
    Clients=["connected_clients:3", "cluster_connections:6", "blocked_clients:1", "maxclients:10000"],
    Memory=["used_memory:2097152", "used_memory_human:2.00M", "maxmemory:1048576", "maxmemory_human:1.00M",
            "mem_fragmentation_ratio:2.61", "total_system_memory_human:23.54G"],
    Stats=["total_commands_processed:10", "keyspace_hits:2", "keyspace_misses:1", "instantaneous_input_kbps:0.08"],
    Replication=["role:master", "connected_slaves:1"],
    CPU=["used_cpu_sys:0.020561"],
    Modules=[],
    Commandstats=["cmdstat_get:calls=4,usec=4,usec_per_call=1.00,rejected_calls=0,failed_calls=0"],
    Errorstats=["errorstat_ERR:count=2"],
    Cluster=["cluster_enabled:1"],
    Keyspace=["db0:keys=3,expires=1,avg_ttl=1000"],
)  # fmt: skip
SHARD_B = _info(
    Server=["redis_version:7.2.4", "server_mode:cluster", "process_id:12", "tcp_port:0"],
    Clients=["connected_clients:2", "cluster_connections:6", "blocked_clients:0", "maxclients:10000"],
    Memory=["used_memory:1048576", "used_memory_human:1.00M", "maxmemory:1048576", "maxmemory_human:1.00M",
            "mem_fragmentation_ratio:1.50", "total_system_memory_human:23.54G"],
    Stats=["total_commands_processed:5", "keyspace_hits:1", "keyspace_misses:0", "instantaneous_input_kbps:0.02"],
    Replication=["role:master", "connected_slaves:1"],
    CPU=["used_cpu_sys:0.010000"],
    Modules=[],
    Commandstats=["cmdstat_get:calls=6,usec=16,usec_per_call=2.67,rejected_calls=1,failed_calls=0",
                  "cmdstat_set:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0"],
    Errorstats=["errorstat_ERR:count=1", "errorstat_WRONGTYPE:count=1"],
    Cluster=["cluster_enabled:1"],
    Keyspace=["db0:keys=5,expires=3,avg_ttl=3000"],
)  # fmt: skip
EMPTY_SHARD = _info(
    Server=["redis_version:7.2.4", "server_mode:cluster"], Cluster=["cluster_enabled:1"], Keyspace=[]
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # One node, not a cluster.
        ("cluster_enabled", "0"),
        ("server_mode", "standalone"),
        ("cluster_connections", "0"),
        # Summed, and their human renderings with them.
        ("connected_clients", "5"),
        ("blocked_clients", "1"),
        ("used_memory", "3145728"),
        ("used_memory_human", "3.00M"),
        ("maxmemory", "2097152"),
        ("maxmemory_human", "2.00M"),
        ("total_commands_processed", "15"),
        ("keyspace_hits", "3"),
        ("keyspace_misses", "1"),
        ("connected_slaves", "2"),
        ("instantaneous_input_kbps", "0.10"),
        ("used_cpu_sys", "0.030561"),
        # Per command and per error, over every command any shard ran.
        ("cmdstat_get", "calls=10,usec=20,usec_per_call=2.00,rejected_calls=1,failed_calls=0"),
        ("cmdstat_set", "calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0"),
        ("errorstat_ERR", "count=3"),
        ("errorstat_WRONGTYPE", "count=1"),
        # Keys and expires summed; avg_ttl averaged over the expiring keys.
        ("db0", "keys=8,expires=4,avg_ttl=2500"),
        # The rest is the first shard's.
        ("redis_version", "7.2.4"),
        ("process_id", "11"),
        ("maxclients", "10000"),
        ("mem_fragmentation_ratio", "2.61"),
        ("total_system_memory_human", "23.54G"),
        ("role", "master"),
    ],
)
def test_the_database_view_of_a_field(field: str, value: str) -> None:
    assert _fields(merge_info_texts([SHARD_A, SHARD_B, EMPTY_SHARD]))[field] == value


def test_the_first_shard_layout_is_kept_and_fields_only_others_have_are_added_to_their_section() -> None:
    merged = merge_info_texts([SHARD_A, SHARD_B])
    sections = [line for line in merged.split(b"\r\n") if line.startswith(b"# ")]
    assert sections == [line for line in SHARD_A.split(b"\r\n") if line.startswith(b"# ")]
    commandstats = merged.split(b"# Commandstats\r\n")[1].split(b"\r\n\r\n")[0]
    assert commandstats.split(b"\r\n")[:2] == [
        b"cmdstat_get:calls=10,usec=20,usec_per_call=2.00,rejected_calls=1,failed_calls=0",
        b"cmdstat_set:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0",
    ]
    assert b"# Modules\r\n\r\n# Commandstats" in merged and merged.endswith(b"avg_ttl=2500\r\n")
    # A node's own INFO layout round-trips: one shard merged with nothing else is itself, but single.
    assert _fields(merge_info_texts([SHARD_A])) == {**_fields(SHARD_A), **{
        "server_mode": "standalone", "cluster_enabled": "0", "cluster_connections": "0"}}  # fmt: skip


def test_keyspace_from_shards_that_have_keys_only() -> None:
    assert _fields(merge_info_texts([EMPTY_SHARD, SHARD_B]))["db0"] == "keys=5,expires=3,avg_ttl=3000"
    assert b"db0" not in merge_info_texts([EMPTY_SHARD, EMPTY_SHARD])
    no_expires = _info(Keyspace=["db0:keys=2,expires=0,avg_ttl=0"])
    assert _fields(merge_info_texts([no_expires, no_expires]))["db0"] == "keys=4,expires=0,avg_ttl=0"


@pytest.mark.parametrize(
    ("n", "human"),
    [
        (0, b"0B"),
        (1023, b"1023B"),
        (1024, b"1.00K"),
        (2773456, b"2.64M"),
        (25276194816, b"23.54G"),
        (1 << 50, b"1.00P"),
    ],
)
def test_bytes_are_rendered_as_the_engine_renders_them(n: int, human: bytes) -> None:
    assert render_human_bytes(n) == human


def test_the_reply_keeps_its_type_and_an_error_wins() -> None:
    merged = merge_info([_bulk(SHARD_A), _bulk(SHARD_B)])
    assert merged.startswith(b"$") and b"cluster_enabled:0" in merged
    verbatim = b"=%d\r\ntxt:%s\r\n" % (len(SHARD_A) + 4, SHARD_A)
    merged = merge_info([verbatim, verbatim])
    body = merged.split(b"\r\n", 1)[1]
    assert merged.startswith(b"=%d\r\ntxt:" % (len(body) - 2)) and b"cluster_enabled:0" in merged
    assert merge_info([_bulk(SHARD_A), b"-ERR boom\r\n"]) == b"-ERR boom\r\n"
    assert merge_info([b"$0\r\n\r\n", b"$0\r\n\r\n"]) == b"$0\r\n\r\n"  # an unknown section
