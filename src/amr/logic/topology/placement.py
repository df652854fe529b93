"""Placement: which ports a database and its nodes get, and which nodes a database needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from amr.errors import ArmError, InvalidParameter
from amr.model.enums import ClusteringPolicy
from amr.model.node import Role
from amr.model.resources import Database, NodeAssignment
from amr.model.sku import Sku

_BUS_OFFSET = 10000


def choose_database_port(
    requested: int | None,
    port_range: tuple[int, int],
    used: Iterable[int],
    is_free: Callable[[int], bool],
) -> int:
    """The database's public port: the requested one if it is in range and free, else the lowest
    free port of the range. ``used`` are ports held by other databases; ``is_free`` asks the host."""
    start, end = port_range
    taken = set(used)
    if requested is not None:
        if not start <= requested <= end:
            raise InvalidParameter(
                f"port {requested} is outside the database port range {start}-{end} of this amr "
                "installation; omit port to get the next free one.",
                target="properties.port",
            )
        if requested in taken or not is_free(requested):
            raise ArmError(
                "PortInUse",
                f"port {requested} is already in use; choose another port or omit it to get the next "
                "free one.",
                409,
                target="properties.port",
            )
        return requested
    for port in range(start, end + 1):
        if port not in taken and is_free(port):
            return port
    raise ArmError(
        "PortRangeExhausted",
        f"no free database port left in {start}-{end}; delete a database or widen the range.",
        409,
    )


def plan_used_ports(databases: Iterable[Database]) -> set[int]:
    """The ports databases hold: their endpoints, their nodes' ports and those nodes' cluster-bus
    ports (port + 10000)."""
    used: set[int] = set()
    for db in databases:
        used.add(db.port)
        for node in db.nodes:
            used.update((node.port, node.port + _BUS_OFFSET))
    return used


def choose_node_ports(
    count: int, port_range: tuple[int, int], used: Iterable[int], is_free: Callable[[int], bool]
) -> list[int]:
    """``count`` node ports from the node range whose cluster-bus ports (port + 10000) are free too."""
    start, end = port_range
    taken = set(used)
    chosen: list[int] = []
    for port in range(start, end + 1):
        if len(chosen) == count:
            break
        if port in taken or port + _BUS_OFFSET in taken:
            continue
        if is_free(port) and is_free(port + _BUS_OFFSET):
            chosen.append(port)
    if len(chosen) < count:
        raise ArmError(
            "PortRangeExhausted",
            f"not enough free node ports left in {start}-{end}; delete a database or widen the range.",
            409,
        )
    return chosen


def plan_shard_count(sku: Sku, max_shards: int, policy: ClusteringPolicy) -> int:
    """How many shards a database runs: for the clustered policies (OSSCluster, EnterpriseCluster,
    whose gateway routes each command by hash slot) the SKU's count, capped by the installation's
    setting; one for NoCluster."""
    if not policy.cluster_mode:
        return 1
    return max(1, min(sku.shards, max_shards))


def render_shard_note(sku: Sku, shards: int, policy: ClusteringPolicy) -> str:
    """The database's statusMessage about shards: empty when it runs the SKU's count, else why not."""
    if sku.shards <= shards:
        return ""
    why = (
        "engine.max_shards_per_database caps it"
        if policy.cluster_mode
        else f"{policy.value} databases run one shard; the clustered policies run several"
    )
    return f"{sku.name} has {sku.shards} shards in Azure; this amr installation runs {shards} ({why})."


def plan_nodes(
    uid: str, shards: int, high_availability: bool, existing: tuple[NodeAssignment, ...], ports: list[int]
) -> tuple[NodeAssignment, ...]:
    """The nodes a database needs: a primary per shard and, with HA, a replica per shard. Existing
    nodes are kept; new ones take ports from ``ports`` in order."""
    nodes = list(existing)
    free = iter(ports)
    for shard in range(shards):
        roles = [Role.PRIMARY] + ([Role.REPLICA] if high_availability else [])
        have = [n for n in nodes if n.shard == shard]
        for index in range(len(have), len(roles)):
            nodes.append(NodeAssignment(f"{uid}-{shard}-{index}", shard, roles[index], next(free)))
    return tuple(nodes)


def count_new_nodes(shards: int, high_availability: bool, existing: tuple[NodeAssignment, ...]) -> int:
    """How many node ports ``plan_nodes`` will need."""
    per_shard = 2 if high_availability else 1
    return sum(max(0, per_shard - len([n for n in existing if n.shard == s])) for s in range(shards))
