"""amr's own users on the nodes: one per purpose, with a password per database.

Each of amr's parts logs in to a node as a user of its own that may run only what that part needs:
the control plane as ``amr-admin``, replicas to their primary as ``amr-replication``, the failover
coordinator and the node launcher as ``amr-ha``, the gateway as ``amr-gateway``, the metric
collector as ``amr-monitor``. Their passwords
differ per database: each is derived (HMAC-SHA256) from a master secret of its purpose kept in
``AMR_HOME/secrets`` and the database's uid, so a password that leaked from one database opens no
other, and a process holds only the masters of its own purposes (the gateway only the gateway's, `amr
ha` only the coordinator's; a node's launcher only its own database's replication and probe
passwords, written into its node directory).

Every internal user name starts with ``INTERNAL_USER_PREFIX``; the gateway refuses such names on
public ports, so none of these users can log in from outside even with its password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
from dataclasses import dataclass, field

INTERNAL_USER_PREFIX = "amr-"
ADMIN_USER = "amr-admin"
REPLICATION_USER = "amr-replication"
HA_USER = "amr-ha"
GATEWAY_USER = "amr-gateway"
MONITOR_USER = "amr-monitor"
INTERNAL_USERS = (ADMIN_USER, REPLICATION_USER, HA_USER, GATEWAY_USER, MONITOR_USER)

# What each internal user may run besides AUTH. The admin user runs the control plane and may run
# anything; the others are narrow on purpose.
REPLICATION_COMMANDS = ("psync", "sync", "replconf", "ping")
HA_COMMANDS = ("ping", "info", "role", "replicaof", "cluster|failover")
# The gateway lists and kills a tenant's clients for it (tenants may not: they would reach amr's own).
GATEWAY_COMMANDS = (
    "role", "ping", "cluster|slots", "cluster|shards", "cluster|myid", "command|info", "client|list",
    "client|kill",
)  # fmt: skip


# The metric collector reads INFO and CLIENT LIST in one MULTI/EXEC, so that both are read at the
# same instant (amr.logic.metrics.sample); nothing else, and no keys.
MONITOR_COMMANDS = ("info", "client|list", "multi", "exec", "discard", "ping")


def derive_password(master: str, database_uid: str, purpose: str) -> str:
    """The password of ``purpose``'s user on the nodes of database ``database_uid``: an HMAC of both
    under the purpose's master secret, so it is stable across restarts and needs no storage."""
    digest = hmac.new(master.encode(), f"{purpose}:{database_uid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def database_uid_of_node(node: str) -> str:
    """The uid of the database a node belongs to, from its name (``<uid>-<shard>-<index>``) or its
    socket path (``.../run/<node>.sock``)."""
    name = posixpath.basename(node).removesuffix(".sock")
    return name.rsplit("-", 2)[0]


@dataclass(frozen=True)
class DatabaseCredentials:
    """The passwords of amr's users on one database's nodes."""

    admin: str = field(repr=False)
    replication: str = field(repr=False)
    ha: str = field(repr=False)
    gateway: str = field(default="", repr=False)  # "": no gateway user
    monitor: str = field(default="", repr=False)  # "": no metric collector user


@dataclass(frozen=True)
class CredentialMasters:
    """The master secrets the per-database passwords derive from ("" for a purpose this process
    does not hold)."""

    admin: str = field(default="", repr=False)
    ha: str = field(default="", repr=False)
    gateway: str = field(default="", repr=False)
    monitor: str = field(default="", repr=False)

    def for_database(self, database_uid: str) -> DatabaseCredentials:
        """Every internal password of one database."""
        return DatabaseCredentials(
            admin=self.admin_for(database_uid),
            replication=derive_password(self.admin, database_uid, "replication"),
            ha=self.ha_for(database_uid),
            gateway=self.gateway_for(database_uid),
            monitor=self.monitor_for(database_uid),
        )

    def admin_for(self, database_uid: str) -> str:
        """The control plane's password on a database's nodes."""
        return derive_password(self.admin, database_uid, "admin")

    def ha_for(self, database_uid: str) -> str:
        """The failover coordinator's password on a database's nodes."""
        return derive_password(self.ha, database_uid, "ha")

    def gateway_for(self, database_uid: str) -> str:
        """The gateway's password on a database's nodes ("" without a gateway master)."""
        return derive_password(self.gateway, database_uid, "gateway") if self.gateway else ""

    def monitor_for(self, database_uid: str) -> str:
        """The metric collector's password on a database's nodes ("" without a monitor master)."""
        return derive_password(self.monitor, database_uid, "monitor") if self.monitor else ""
