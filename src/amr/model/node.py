"""Nodes: the valkey-server processes that serve a database."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


class ProcessState(enum.StrEnum):
    """What the process supervisor says of a node's process."""

    ABSENT = "absent"  # not registered with the supervisor
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"  # exited and will not be restarted (FATAL/EXITED/BACKOFF loops)


@dataclass(frozen=True)
class NodeSpec:
    """Everything needed to run one valkey-server node.

    ``name`` is unique on the host and safe as a file and supervisor program name.
    ``config`` is the full valkey.conf text (rendered by amr.logic.render.valkey_conf).
    """

    name: str
    database_uid: str
    shard: int
    role: Role
    directory: str  # AMR_HOME/nodes/<database_uid>/<name>
    socket: str  # unix socket the gateway and amr connect to
    internal_host: str
    port: int  # TCP port on internal_host (replication, cluster bus base)
    config: str
    # The ports (on internal_host) of the other nodes of the shard, which the node asks who is primary
    # before it starts (amr.logic.ha.node_launch); empty without HA.
    peers: tuple[int, ...] = ()
    cluster_mode: bool = False
    # How long a restarted primary waits for its replica's promotion before it starts anyway.
    rejoin_wait_ms: int = 0


@dataclass(frozen=True)
class NodeStatus:
    name: str
    state: ProcessState
    pid: int | None = None
    description: str = ""


@dataclass(frozen=True)
class EngineVersion:
    """Which engine the nodes run (``valkey`` or ``redis``, as its ``--version`` says) and its
    version, for the settings only some engines know."""

    name: str
    major: int
    minor: int
