"""An in-memory NodeBackend for unit tests of the reconciler (never for integration tests).

Each fake node keeps just the state the reconciler observes and changes: live config, the default
user's flags and password hashes, and its cluster view. ``fail_start`` makes a node refuse to start,
as a real engine with a bad config would.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.crc import key_slot

from amr.errors import NodeError
from amr.logic.keyspace.slots import compress_slots
from amr.model.node import EngineVersion, NodeSpec, NodeStatus, ProcessState

_ids = itertools.count(1)


@dataclass
class FakeNode:
    spec: NodeSpec
    pid: int
    config: dict[str, str] = field(default_factory=dict)
    user_on: bool = False
    user_hashes: set[str] = field(default_factory=set)
    user_commands: str = ""  # the default user's command rules
    node_id: str = ""
    known: set[str] = field(default_factory=set)
    slots: int = 0
    slot_range: tuple[int, int] = (0, 16383)
    # The slots it owns once a migration touched it (then authoritative over slots/slot_range).
    owned: set[int] | None = None
    epoch: int = 0  # its cluster config epoch
    primary_id: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    killed_default_clients: int = 0
    snapshots: int = 0
    # amr's own users (amr-admin, amr-gateway ...): their password hashes and command rules, as ACL
    # GETUSER shows them; a user not here does not exist.
    internal_users: dict[str, tuple[set[str], str]] = field(default_factory=dict)
    role: str = ""  # what ROLE says in a non-clustered database ("master" or "slave")
    paused: bool = False  # CLIENT PAUSE in force
    binary: str = "valkey-server"  # the engine binary the process runs
    cluster_mode: bool = False  # what INFO cluster says (cluster_enabled): the config it started with
    saves: list[bool] = field(default_factory=list)  # each SAVE: whether writes were paused then


def _user_rule(words: list[str]) -> tuple[set[str], str]:
    """A user's password hashes and command rules from its ACL rule words."""
    return {w[1:] for w in words if w.startswith("#")}, " ".join(w for w in words if w[:1] in "+-")


class FakeNodeBackend:
    """Implements amr.nodes.backend.NodeBackend in memory."""

    def __init__(self) -> None:
        self.nodes: dict[str, FakeNode] = {}
        self.by_port: dict[int, FakeNode] = {}
        self.fail_start: dict[str, str] = {}  # node name -> engine message
        self.starts: list[str] = []
        self.removed: list[str] = []
        self.snapshots: set[str] = set()  # nodes with an RDB file on disk
        self.directories: dict[str, str] = {}  # node directories without a running node
        self.restarts: list[str] = []  # restart_node calls, in order
        self.server_binary = "valkey-server"  # what nodes started (or restarted) from now run
        self.engine_version: EngineVersion | None = EngineVersion("valkey", 8, 1)
        self.fail_migrates = 0  # how many MIGRATEs to refuse next (as a target that went away would)

    async def ensure_node(self, spec: NodeSpec) -> None:
        if spec.name in self.nodes:
            self.nodes[spec.name].spec = spec
            return
        self.starts.append(spec.name)
        if spec.name in self.fail_start:
            return
        node = FakeNode(spec, pid=next(_ids), node_id=f"{spec.name}-id", binary=self.server_binary)
        node.role = "master" if spec.role.value == "primary" else "slave"
        node.known.add(node.node_id)
        node.cluster_mode = "cluster-enabled yes" in spec.config
        for line in spec.config.splitlines():
            parts = line.split()
            if parts[:2] == ["user", "default"]:
                node.user_on = "on" in parts
                node.user_hashes, node.user_commands = _user_rule(parts[2:])
            elif parts[:1] == ["user"] and parts[1].startswith("amr-"):
                node.internal_users[parts[1]] = _user_rule(parts[2:])
            elif parts and parts[0] in (
                "maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "replica-announce-ip",
                "cluster-announce-hostname", "cluster-announce-client-ipv4", "cluster-preferred-endpoint-type",
                "client-output-buffer-limit", "maxmemory-clients",
            ):  # fmt: skip
                node.config[parts[0]] = line.split(" ", 1)[1]
            elif parts and parts[0] == "save":
                node.config["save"] = line.split(" ", 1)[1].strip('"')
        self.nodes[spec.name] = node
        self.by_port[spec.port] = node

    async def node_status(self, name: str) -> NodeStatus:
        if name in self.nodes:
            return NodeStatus(name, ProcessState.RUNNING, self.nodes[name].pid)
        if name in self.fail_start:
            return NodeStatus(name, ProcessState.FAILED)
        return NodeStatus(name, ProcessState.ABSENT)

    async def snapshot_exists(self, spec: NodeSpec) -> bool:
        return spec.name in self.snapshots

    async def remove_snapshot(self, spec: NodeSpec) -> None:
        self.snapshots.discard(spec.name)

    async def read_config(self, spec: NodeSpec) -> str | None:
        node = self.nodes.get(spec.name)
        return node.spec.config if node is not None else None

    async def list_nodes(self) -> list[NodeStatus]:
        return [await self.node_status(n) for n in self.nodes]

    async def list_node_directories(self) -> dict[str, str]:
        dirs = {name: node.spec.directory for name, node in self.nodes.items()}
        return {**dirs, **self.directories}

    async def wait_ready(self, spec: NodeSpec, timeout: float) -> None:
        if spec.name in self.fail_start:
            raise NodeError(f"node {spec.name} did not start: {self.fail_start[spec.name]}")
        if spec.name not in self.nodes:
            raise NodeError(f"node {spec.name} is not running")

    async def remove_node(self, name: str, directory: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None:
            self.by_port.pop(node.spec.port, None)
        self.fail_start.pop(name, None)
        self.directories.pop(name, None)
        self.removed.append(name)

    def admin(self, spec: NodeSpec, decode: bool = True) -> FakeAdmin:
        return FakeAdmin(self, spec.name)

    async def runs_current_binary(self, name: str, directory: str) -> bool | None:
        node = self.nodes.get(name)
        return None if node is None else node.binary == self.server_binary

    async def restart_node(self, name: str) -> None:
        """Stop and start the node: a new pid; a non-clustered node comes back in the role its spec
        (valkey.conf) gives it now."""
        node = self.nodes.get(name)
        if node is None:
            raise NodeError(f"node {name} is not registered, so it cannot be restarted")
        self.restarts.append(name)
        node.pid = next(_ids)
        node.binary = self.server_binary
        if "cluster-enabled yes" not in node.spec.config:
            node.role = "master" if node.spec.role.value == "primary" else "slave"
        elif not node.cluster_mode:
            # Started in cluster mode for the first time with data (a converted NoCluster node): it
            # claims the slots its keys hash to, as valkey-server does.
            node.cluster_mode = True
            node.owned = {key_slot(k.encode()) for k in node.keys}
            node.slots = len(node.owned)
        node.paused = False

    def kill(self, name: str) -> None:
        """The process died and nobody restarted it yet."""
        node = self.nodes.pop(name)
        self.by_port.pop(node.spec.port, None)

    def restart(self, name: str) -> int:
        """The process died and the supervisor restarted it at once: the same node (its config and
        data files) under a new pid, which is returned."""
        node = self.nodes[name]
        node.pid = next(_ids)
        return node.pid

    def promote(self, name: str) -> None:
        """The replica ``name`` became its shard's primary (a failover or switchover done by the engine
        or the `amr ha` coordinator), and the other nodes of the shard its replicas."""
        new = self.nodes[name]
        shard = [n for n in self.nodes.values() if n.spec.database_uid == new.spec.database_uid]
        shard = [n for n in shard if n.spec.shard == new.spec.shard]
        holder = max(shard, key=lambda n: n.slots)
        slots, slot_range, owned = holder.slots, holder.slot_range, holder.owned
        for node in shard:
            node.role = "master" if node is new else "slave"
            if node is new:
                node.primary_id = None
                node.slots, node.slot_range, node.owned = slots, slot_range, owned
            else:
                node.primary_id = new.node_id
                node.slots, node.owned = 0, None


class FakeAdmin:
    """Answers the admin commands the reconciler sends, like valkey-server would."""

    def __init__(self, backend: FakeNodeBackend, name: str) -> None:
        self._backend = backend
        self._name = name
        self._index: dict[int, list[str]] | None = None

    def _node(self) -> FakeNode:
        node = self._backend.nodes.get(self._name)
        if node is None:
            raise NodeError(f"cannot connect to node {self._name}")
        return node

    async def execute(self, *args: str | int | bytes) -> object:
        node = self._node()
        words = [str(a) for a in args]
        command = " ".join(w.upper() for w in words[:2])
        if command == "CONFIG GET":
            return {k: node.config.get(k, "") for k in words[2:]}
        if command == "CONFIG SET":
            node.config[words[2]] = words[3]
            return "OK"
        if command == "ACL GETUSER" and words[2].startswith("amr-"):
            if words[2] not in node.internal_users:
                return None
            hashes, commands = node.internal_users[words[2]]
            return {"flags": ["on"], "passwords": sorted(hashes), "commands": commands}
        if command == "ACL SETUSER" and words[2].startswith("amr-"):
            node.internal_users[words[2]] = _user_rule(words[3:])
            return "OK"
        if command == "ACL GETUSER":
            return {
                "flags": ["on" if node.user_on else "off"],
                "passwords": sorted(node.user_hashes),
                "commands": node.user_commands,
            }
        if command == "ACL SETUSER":
            rule = words[3:]
            node.user_on = "on" in rule
            node.user_hashes, node.user_commands = _user_rule(rule)
            return "OK"
        if command == "ROLE":
            if "cluster-enabled yes" in node.spec.config:
                return ["slave", "127.0.0.1", 0, "connected", 0] if node.primary_id else ["master", 0, []]
            return (
                [node.role, 0, []] if node.role == "master" else [node.role, "127.0.0.1", 0, "connected", 0]
            )
        if command == "CLIENT KILL":
            node.killed_default_clients += 1
            return 0
        if command == "INFO CLUSTER":
            return {"cluster_enabled": int(node.cluster_mode)}
        if command == "SAVE":
            node.saves.append(node.paused)
            return "OK"
        if command == "INFO PERSISTENCE":
            aof = node.config.get("appendonly") == "yes"
            return {"aof_enabled": int(aof), "aof_rewrite_in_progress": 0, "rdb_bgsave_in_progress": 0}
        if command == "BGSAVE SCHEDULE":
            node.snapshots += 1
            return "Background saving started"
        if command == "CLUSTER INFO":
            # ok once the node serves, or (a primary a scale-out added) knows every slot's owner.
            covered = sum(n.slots for n in self._backend.nodes.values() if n.node_id in node.known)
            ok = node.slots > 0 or node.primary_id is not None or covered >= 16384
            return f"cluster_state:{'ok' if ok else 'fail'}\r\n"
        if command == "CLUSTER NODES":
            lines = []
            for other in self._backend.nodes.values():
                if other.node_id not in node.known:
                    continue
                flags = "myself,master" if other is node else "master"
                primary = other.primary_id or "-"
                held = (
                    other.owned
                    if other.owned is not None
                    else range(other.slot_range[0], other.slot_range[1] + 1)
                )
                slots = "".join(f" {a}-{b}" for a, b in compress_slots(held)) if other.slots else ""
                lines.append(
                    f"{other.node_id} 127.0.0.2:{other.spec.port}@0 {flags} {primary} 0 0 {other.epoch} "
                    f"connected{slots}"
                )
            alive = {n.node_id for n in self._backend.nodes.values()}
            for gone in sorted(node.known - alive):  # a removed node stays listed, failed, until forgotten
                lines.append(f"{gone} 127.0.0.2:0@0 master,fail - 0 0 0 disconnected")
            return "\n".join(lines)
        if command == "CLUSTER ADDSLOTSRANGE":
            bounds = [int(w) for w in words[2:]]
            if len(bounds) == 2 and node.owned is None and not node.slots:
                node.slots = bounds[1] - bounds[0] + 1
                node.slot_range = (bounds[0], bounds[1])
                return "OK"
            added = {s for i in range(0, len(bounds), 2) for s in range(bounds[i], bounds[i + 1] + 1)}
            node.owned = _owned(node) | added
            node.slots = len(node.owned)
            return "OK"
        if command == "CLUSTER MEET":
            peer = self._backend.by_port.get(int(words[3]))
            if peer is not None:
                # Gossip, settled: every node of the two clusters now knows every other.
                joined = node.known | peer.known
                for other in self._backend.nodes.values():
                    if other.node_id in joined:
                        other.known = set(joined)
            return "OK"
        if command == "CLUSTER REPLICATE":
            node.primary_id = words[2]
            return "OK"
        if command == "INFO REPLICATION":
            role = str((await self.execute("ROLE"))[0])  # type: ignore[index]
            link = "up" if role == "slave" else "down"
            return {"role": role, "master_repl_offset": 0, "slave_repl_offset": 0, "master_link_status": link}
        if command in ("CLIENT PAUSE", "CLIENT UNPAUSE"):
            node.paused = command == "CLIENT PAUSE"
            return "OK"
        if command == "REPLICAOF NO":  # REPLICAOF NO ONE: a non-clustered replica becomes a primary
            node.role = "master"
            return "OK"
        if words[0].upper() == "REPLICAOF":  # a non-clustered node follows the primary on a port
            target = self._backend.by_port.get(int(words[2]))
            if target is None:
                raise NodeError("REPLICAOF: no node on that port")
            node.role = "slave"
            return "OK"
        if command == "CLUSTER FAILOVER":  # a cluster replica takes over from its primary
            leader = next((n for n in self._backend.nodes.values() if n.node_id == node.primary_id), None)
            if leader is None:
                raise NodeError("You should send CLUSTER FAILOVER to a replica")
            node.slots, leader.slots = leader.slots, 0
            node.slot_range, node.owned, leader.owned = leader.slot_range, leader.owned, None
            node.primary_id, leader.primary_id = None, node.node_id
            return "OK"
        if command == "CLUSTER SETSLOT":
            return self._setslot(node, int(words[2]), words[3].upper(), words[4] if len(words) > 4 else "")
        if command == "CLUSTER GETKEYSINSLOT":
            keys = self._keys_by_slot(node).get(int(words[2]), [])
            return [k.encode() for k in keys[: int(words[3])]]
        if command == "CLUSTER FORGET":
            node.known.discard(words[2])
            return "OK"
        if command == "CLUSTER BUMPEPOCH":
            node.epoch = max(n.epoch for n in self._backend.nodes.values()) + 1
            return f"BUMPED {node.epoch}"
        if words[0].upper() == "MIGRATE" and self._backend.fail_migrates > 0:
            self._backend.fail_migrates -= 1
            raise NodeError("IOERR error or timeout writing to target instance")
        if words[0].upper() == "MIGRATE":
            target = self._backend.by_port[int(words[2])]
            keys = [a.decode() if isinstance(a, bytes) else str(a) for a in args[words.index("KEYS") + 1 :]]
            for k in keys:
                if k in node.keys:
                    target.keys[k] = node.keys.pop(k)
            self._index = None
            return "OK"
        if command.startswith("FLUSHALL"):
            node.keys.clear()
            return "OK"
        if command == "MEMORY STATS":
            return {"dataset.bytes": sum(len(k) + len(v) for k, v in node.keys.items())}
        raise NodeError(f"fake node does not know {command}")

    def _setslot(self, node: FakeNode, slot: int, how: str, node_id: str) -> str:
        """SETSLOT NODE moves ownership (the new owner bumps its epoch); IMPORTING/MIGRATING are
        accepted and not modelled (nothing the reconciler decides on changes with them here)."""
        if how != "NODE":
            return "OK"
        owner = next(n for n in self._backend.nodes.values() if n.node_id == node_id)
        mine = _owned(node)
        if owner is node:
            if slot not in mine:
                mine.add(slot)
                node.epoch = max(n.epoch for n in self._backend.nodes.values()) + 1
        else:
            if slot in mine and self._keys_by_slot(node).get(slot):
                raise NodeError(f"Can't assign hashslot {slot} to a different node while I still hold keys")
            mine.discard(slot)
        node.slots = len(mine)
        return "OK"

    def _keys_by_slot(self, node: FakeNode) -> dict[int, list[str]]:
        """The node's keys by hash slot, computed once per pipeline (until a MIGRATE moves keys)."""
        if self._index is None:
            self._index = {}
            for k in node.keys:
                self._index.setdefault(key_slot(k.encode()), []).append(k)
        return self._index

    async def pipeline(self, commands: Sequence[Sequence[str | int | bytes]]) -> list[object]:
        self._index = None
        try:
            return [await self.execute(*command) for command in commands]
        finally:
            self._index = None

    async def close(self) -> None:
        return None


def _owned(node: FakeNode) -> set[int]:
    """The node's slots as a set it holds from now on (changes to it are the node's)."""
    if node.owned is None:
        node.owned = set(range(node.slot_range[0], node.slot_range[1] + 1)) if node.slots else set()
    return node.owned
