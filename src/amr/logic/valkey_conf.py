"""Rendering what a node runs with: valkey.conf and the ACL rule of the data-plane user."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from amr.model.enums import AofFrequency, ClusteringPolicy, EvictionPolicy, RdbFrequency
from amr.model.node import Role
from amr.model.resources import Persistence

ADMIN_USER = "amr-admin"
# The gateway's user: it asks each node for its ROLE to follow failovers and for the slot map to route
# EnterpriseCluster commands, and may do nothing else (no keys, no channels).
GATEWAY_USER = "amr-gateway"
GATEWAY_COMMANDS = ("role", "ping", "cluster|slots", "cluster|shards", "cluster|myid", "command|info")
CLUSTER_BUS_OFFSET = 10000

# Commands a managed service keeps for itself (DESIGN.md, Nodes). Read-only CLUSTER subcommands stay
# available so cluster-aware clients can discover the topology.
_DENIED_COMMANDS = (
    "config", "acl", "debug", "shutdown", "replicaof", "slaveof", "failover", "save", "bgsave",
    "bgrewriteaof", "module", "sync", "psync", "replconf", "migrate", "pfdebug", "pfselftest", "cluster",
)  # fmt: skip
_ALLOWED_CLUSTER_SUBCOMMANDS = (
    "info", "slots", "shards", "nodes", "keyslot", "myid", "myshardid", "countkeysinslot",
    "getkeysinslot", "links",
)  # fmt: skip

_EVICTION = {
    EvictionPolicy.ALL_KEYS_LFU: "allkeys-lfu",
    EvictionPolicy.ALL_KEYS_LRU: "allkeys-lru",
    EvictionPolicy.ALL_KEYS_RANDOM: "allkeys-random",
    EvictionPolicy.VOLATILE_LRU: "volatile-lru",
    EvictionPolicy.VOLATILE_LFU: "volatile-lfu",
    EvictionPolicy.VOLATILE_TTL: "volatile-ttl",
    EvictionPolicy.VOLATILE_RANDOM: "volatile-random",
    EvictionPolicy.NO_EVICTION: "noeviction",
}

_RDB_SAVE = {
    RdbFrequency.ONE_HOUR: "3600 1",
    RdbFrequency.SIX_HOURS: "21600 1",
    RdbFrequency.TWELVE_HOURS: "43200 1",
}


def password_hash(secret: str) -> str:
    """The ACL form of a password (``#`` + SHA-256), so config files never hold a key in clear."""
    return "#" + hashlib.sha256(secret.encode()).hexdigest()


def render_eviction_policy(policy: EvictionPolicy) -> str:
    """The maxmemory-policy value for an ARM eviction policy."""
    return _EVICTION[policy]


@dataclass(frozen=True)
class PersistenceConfig:
    appendonly: str
    appendfsync: str
    save: str


def render_moving_slots_settings(moving_slots: bool) -> tuple[tuple[str, str], ...]:
    """The engine settings that differ while a database's slots migrate between its shards.

    ``rdbcompression no``: MIGRATE serializes every key it moves as a DUMP payload, and
    LZF-compressing each value there (and decompressing it on the target) took about half of the
    source's CPU, while the source blocks its clients and the migration waits on it; the payloads
    only cross a local socket. Snapshots compress again afterwards.

    ``loglevel warning``: every node logs several notices per slot that changes hands (about 4 MB
    of log per node for a 1 -> 4 scale-out with replicas); writing them, and the supervisor copying
    them, cost a quarter of the migration's time on two cores."""
    return (
        ("rdbcompression", "no" if moving_slots else "yes"),
        ("loglevel", "warning" if moving_slots else "notice"),
    )


def render_persistence(persistence: Persistence) -> PersistenceConfig:
    """The engine settings for the database's persistence property."""
    appendonly = "yes" if persistence.aof_enabled else "no"
    appendfsync = "always" if persistence.aof_frequency is AofFrequency.ALWAYS else "everysec"
    save = ""
    if persistence.rdb_enabled:
        save = _RDB_SAVE[persistence.rdb_frequency or RdbFrequency.ONE_HOUR]
    return PersistenceConfig(appendonly=appendonly, appendfsync=appendfsync, save=save)


def render_default_user_rule(enabled: bool, keys: tuple[str, ...]) -> list[str]:
    """ACL SETUSER arguments for the ``default`` user: on with both access keys as its passwords
    when access keys are enabled, off otherwise; every data command but the managed ones."""
    rule = ["reset", "on" if enabled else "off"]
    rule += [password_hash(k) for k in keys if k]
    rule += ["~*", "&*", "+@all"] + [f"-{c}" for c in _DENIED_COMMANDS]
    rule += [f"+cluster|{s}" for s in _ALLOWED_CLUSTER_SUBCOMMANDS]
    return rule


def render_admin_user_rule(admin_password: str) -> list[str]:
    """ACL rule of amr's internal admin user."""
    return ["reset", "on", password_hash(admin_password), "~*", "&*", "+@all"]


def render_gateway_user_rule(gateway_password: str) -> list[str]:
    """ACL SETUSER arguments for the gateway's internal user: ROLE, PING and the read-only topology
    commands (CLUSTER SLOTS/SHARDS/MYID, COMMAND INFO); no keys or channels."""
    return ["reset", "on", password_hash(gateway_password), "resetchannels", "-@all"] + [
        f"+{c}" for c in GATEWAY_COMMANDS
    ]


@dataclass(frozen=True)
class NodeConfigInput:
    """What a node's valkey.conf depends on."""

    role: Role
    directory: str
    socket: str
    internal_host: str
    port: int
    public_host: str
    clustering_policy: ClusteringPolicy
    max_memory_bytes: int
    eviction_policy: EvictionPolicy
    persistence: Persistence
    access_keys_enabled: bool
    access_keys: tuple[str, str]
    admin_password: str
    primary_port: int | None  # the primary's port, for a replica of a non-clustered database
    max_clients: int = 10000
    gateway_password: str = ""  # "" renders no gateway user
    moving_slots: bool = False  # see render_moving_slots_settings


def render_valkey_conf(c: NodeConfigInput) -> str:
    """The full valkey.conf of a node."""
    p = render_persistence(c.persistence)
    lines = [
        "# Generated by amr; changes are overwritten.",
        f"bind {c.internal_host}",
        f"port {c.port}",
        f'unixsocket "{c.socket}"',
        "unixsocketperm 700",
        f'dir "{c.directory}"',
        "daemonize no",
        'logfile ""',
        "databases 1",
        "protected-mode no",
        "tcp-keepalive 60",
        # Show the config file in ps, so an operator can tell which database a process serves.
        'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
        f"maxclients {c.max_clients}",
        f"maxmemory {c.max_memory_bytes}",
        f"maxmemory-policy {render_eviction_policy(c.eviction_policy)}",
        *(f"{name} {value}" for name, value in render_moving_slots_settings(c.moving_slots)),
        f"appendonly {p.appendonly}",
        f"appendfsync {p.appendfsync}",
        f'save "{p.save}"',
        'dbfilename "dump.rdb"',
        'appendfilename "appendonly.aof"',
        # A replica without persistence deletes the RDB of its full sync, so it cannot come back
        # after a crash with data its database should not have (the engine keeps it otherwise).
        "rdb-del-sync-files yes",
        # Full syncs go through a file: after a diskless (socket) sync the primary holds back the
        # writes made meanwhile until the replica's first acknowledgement, up to a second later, and
        # a failover in that second would lose them. Start a sync at once (one replica per primary).
        "repl-diskless-sync no",
        "repl-diskless-sync-delay 0",
        "user " + " ".join(["default"] + render_default_user_rule(c.access_keys_enabled, c.access_keys)[1:]),
        "user " + " ".join([ADMIN_USER] + render_admin_user_rule(c.admin_password)[1:]),
    ]
    if c.gateway_password:
        lines.append("user " + " ".join([GATEWAY_USER] + render_gateway_user_rule(c.gateway_password)[1:]))
    lines += [
        f"primaryuser {ADMIN_USER}",
        f"primaryauth {c.admin_password}",
        "replica-read-only yes",
        f"replica-announce-ip {c.internal_host}",
    ]
    if c.clustering_policy.cluster_mode:
        lines += [
            "cluster-enabled yes",
            'cluster-config-file "nodes.conf"',
            "cluster-node-timeout 5000",
            f"cluster-port {c.port + CLUSTER_BUS_OFFSET}",
            f"cluster-announce-ip {c.internal_host}",
            f"cluster-announce-hostname {c.public_host}",
            "cluster-preferred-endpoint-type hostname",
            "cluster-require-full-coverage no",
            "cluster-allow-replica-migration no",
        ]
    elif c.role is Role.REPLICA and c.primary_port is not None:
        lines.append(f"replicaof {c.internal_host} {c.primary_port}")
    return "\n".join(lines) + "\n"
