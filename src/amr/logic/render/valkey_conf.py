"""Rendering what a node runs with: valkey.conf and the ACL rule of the data-plane user."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from amr.logic.render.announce import ClientAnnouncement, render_announce_settings
from amr.logic.security.node_credentials import (
    ADMIN_USER,
    GATEWAY_COMMANDS,
    GATEWAY_USER,
    HA_COMMANDS,
    HA_USER,
    MONITOR_COMMANDS,
    MONITOR_USER,
    REPLICATION_COMMANDS,
    REPLICATION_USER,
    DatabaseCredentials,
)
from amr.model.enums import AofFrequency, ClusteringPolicy, EvictionPolicy, RdbFrequency
from amr.model.node import Role
from amr.model.resources import Persistence

CLUSTER_BUS_OFFSET = 10000

# Commands a managed service keeps for itself (DESIGN.md, Nodes). Read-only CLUSTER subcommands stay
# available so cluster-aware clients can discover the topology.
_DENIED_COMMANDS = (
    "config", "acl", "debug", "shutdown", "replicaof", "slaveof", "failover", "save", "bgsave",
    "bgrewriteaof", "module", "sync", "psync", "replconf", "migrate", "pfdebug", "pfselftest", "cluster",
    # As in Azure (Redis Enterprise): a pause would hold amr's own probes too, and make a healthy
    # primary look dead to the failover coordinator.
    "client|pause", "client|unpause", "client|no-evict",
    # The gateway answers these itself, over the tenant's own clients only (amr.gateway.client_ops):
    # the engine would list amr's connections and close them, and knows no client's real address.
    "client|list", "client|kill",
)  # fmt: skip
# Subcommands of denied commands that tenants keep: they read, change nothing, and show nothing of
# amr's own users or connections. Read-only CLUSTER subcommands let cluster-aware clients discover
# the topology. ACL WHOAMI (the caller's own user), CAT (the command categories, as COMMAND shows
# them), GENPASS (random bytes) and HELP; not LIST, USERS, GETUSER (amr's users and password hashes),
# DRYRUN (what amr's users may run), LOG (failed logins to amr's users, amr's connections; LOG RESET
# would erase it) nor anything that changes users. MODULE LIST and HELP; not LOAD/LOADEX/UNLOAD.
_ALLOWED_SUBCOMMANDS = (
    *(f"cluster|{s}" for s in (
        "info", "slots", "shards", "nodes", "keyslot", "myid", "myshardid", "countkeysinslot",
        "getkeysinslot", "links",
    )),
    "acl|whoami", "acl|cat", "acl|genpass", "acl|help",
    "module|list", "module|help",
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


# The engine's defaults for the classes amr does not change (CONFIG GET prints replicas as "slave").
_REPLICA_AND_PUBSUB_OUTPUT_LIMITS = "slave 268435456 67108864 60 pubsub 33554432 8388608 60"
CLIENT_OUTPUT_SOFT_SECONDS = 60


def render_client_memory_limits(max_memory_bytes: int) -> tuple[tuple[str, str], ...]:
    """The engine settings that bound what clients' buffers may hold on a node of ``max_memory_bytes``.

    By default a normal client's output buffer is unlimited: a client that pipelines 30 GETs of a
    50 MB value and never reads took a 0.5 GB node to 1.5 GB. Two bounds, measured against that:

    - ``maxmemory-clients`` = half the node's memory: once all clients' buffers (query and output)
      pass it, the engine closes the clients using the most until they are under it, so a node
      holds at most its data plus half of it in client buffers (the attack above peaks under
      300 MB on 0.5 GB). Half, not less: a command or reply must fit in it whole (a 100 MB SET's
      query buffer is 100 MB), and the gateway streams big commands to the node rather than
      holding them itself.
    - ``client-output-buffer-limit normal``: hard = the same half (one reply that big can still be
      read by a client that reads it), soft = an eighth for 60 s (a client that leaves that much
      unread for a minute is not reading at all).

    Replica and pub/sub classes keep the engine's defaults: replicas are amr's own, and pub/sub is
    already bounded (32 MB hard). The value is written as CONFIG GET prints it, so the reconciler
    compares it as is."""
    half = max_memory_bytes // 2
    soft = max_memory_bytes // 8
    return (
        (
            "client-output-buffer-limit",
            f"normal {half} {soft} {CLIENT_OUTPUT_SOFT_SECONDS} {_REPLICA_AND_PUBSUB_OUTPUT_LIMITS}",
        ),
        ("maxmemory-clients", str(half)),
    )


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
    rule += [f"+{s}" for s in _ALLOWED_SUBCOMMANDS]
    return rule


def default_user_is_current(rule: list[str] | tuple[str, ...], commands: str | None) -> bool:
    """Whether the ``default`` user's command rules (as ACL GETUSER shows them; None: unknown) are
    every command rule of ``rule``: a node an older amr set up may let tenants run a command this
    version keeps for itself, or refuse one it now grants, and gets the rule again, live."""
    if commands is None:
        return True
    have = set(commands.split())
    return all(word in have for word in rule if word[:1] in "+-")


@dataclass(frozen=True)
class InternalUser:
    """One of amr's own users on a node: its name, its password's hash (without ``#``), its ACL
    SETUSER rule, and the command rules (``+x``) a node's user must show to count as up to date."""

    name: str
    password_hash: str
    rule: tuple[str, ...]
    commands: tuple[str, ...]


def _narrow_user(name: str, password: str, commands: tuple[str, ...]) -> InternalUser:
    # No keys, no channels: only the commands named.
    rule = ("reset", "on", password_hash(password), "resetchannels", "-@all", *(f"+{c}" for c in commands))
    return InternalUser(name, password_hash(password)[1:], rule, commands)


def render_internal_users(credentials: DatabaseCredentials) -> tuple[InternalUser, ...]:
    """amr's users on a database's nodes (amr.logic.security.node_credentials says who uses which):

    - ``amr-admin``, the control plane: everything;
    - ``amr-replication``, a replica logging in to its primary: PSYNC/SYNC, REPLCONF, PING;
    - ``amr-ha``, the failover coordinator and the node launcher: PING, INFO, ROLE, REPLICAOF,
      CLUSTER FAILOVER;
    - ``amr-gateway``, to follow failovers and read the slot map: ROLE, PING, CLUSTER SLOTS/SHARDS/
      MYID, COMMAND INFO (left out without a gateway password);
    - ``amr-monitor``, the metric collector: INFO and CLIENT LIST in MULTI/EXEC (left out without a
      monitor password)."""
    admin = InternalUser(
        ADMIN_USER,
        password_hash(credentials.admin)[1:],
        ("reset", "on", password_hash(credentials.admin), "~*", "&*", "+@all"),
        ("@all",),
    )
    users = [
        admin,
        _narrow_user(REPLICATION_USER, credentials.replication, REPLICATION_COMMANDS),
        _narrow_user(HA_USER, credentials.ha, HA_COMMANDS),
    ]
    if credentials.gateway:
        users.append(_narrow_user(GATEWAY_USER, credentials.gateway, GATEWAY_COMMANDS))
    if credentials.monitor:
        users.append(_narrow_user(MONITOR_USER, credentials.monitor, MONITOR_COMMANDS))
    return tuple(users)


def internal_user_is_current(user: InternalUser, on: bool, hashes: frozenset[str], commands: str) -> bool:
    """Whether a node's user (its ``on`` flag, password hashes and command rules, as ACL GETUSER
    shows them) is ``user`` as this version of amr grants it: a user from an older version (another
    password, fewer commands) is not, and is set again, live."""
    granted = commands.split()
    return on and hashes == frozenset({user.password_hash}) and all(f"+{c}" in granted for c in user.commands)


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
    credentials: DatabaseCredentials
    primary_port: int | None  # the primary's port, for a replica of a non-clustered database
    max_clients: int = 10000
    moving_slots: bool = False  # see render_moving_slots_settings
    # What a clustered node tells clients about where nodes are (amr.logic.render.announce).
    client_announcement: ClientAnnouncement | None = None


def render_valkey_conf(c: NodeConfigInput) -> str:
    """The full valkey.conf of a node. It holds password hashes only: the replication password a
    replica logs in to its primary with (``primaryauth``) reaches the engine through its standard
    input at start (amr.nodes.launch), never through this file."""
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
        *(f"{name} {value}" for name, value in render_client_memory_limits(c.max_memory_bytes)),
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
        *("user " + " ".join([u.name, *u.rule[1:]]) for u in render_internal_users(c.credentials)),
        "replica-read-only yes",
        f"replica-announce-ip {c.internal_host}",
    ]
    if c.clustering_policy.cluster_mode:
        lines += [
            "cluster-enabled yes",
            'cluster-config-file "nodes.conf"',
            "cluster-node-timeout 5000",
            f"cluster-port {c.port + CLUSTER_BUS_OFFSET}",
            # Peers reach each other on the internal address; clients are told the public one.
            f"cluster-announce-ip {c.internal_host}",
            *(
                f"{name} {value}"
                for name, value in render_announce_settings(c.public_host, c.client_announcement)
            ),
            "cluster-require-full-coverage no",
            "cluster-allow-replica-migration no",
        ]
    elif c.role is Role.REPLICA and c.primary_port is not None:
        lines.append(f"replicaof {c.internal_host} {c.primary_port}")
    return "\n".join(lines) + "\n"
