"""Observing a database's nodes for a restart step (amr.reconciler.rolling): what each node's
process, ROLE, INFO replication and CLUSTER INFO say, parsed by amr.logic.operations.rolling."""

from __future__ import annotations

import dataclasses
import logging

from amr.errors import NodeError
from amr.logic.operations.node_state import NodeTarget
from amr.logic.operations.rolling import RollingNode, parse_info_fields, parse_rolling_node
from amr.model.node import NodeSpec, ProcessState
from amr.model.resources import Database
from amr.nodes.backend import NodeBackend

log = logging.getLogger(__name__)


async def observe_rolling_nodes(
    backend: NodeBackend, db: Database, targets: dict[str, NodeTarget], cluster_mode: bool
) -> tuple[RollingNode, ...]:
    """Every node of ``db`` as a restart step sees it (pid, role, replication offset, cluster state);
    a node that does not answer is seen by its pid alone."""
    nodes: list[RollingNode] = []
    for node in db.nodes:
        spec = targets[node.name].spec
        status = await backend.node_status(node.name)
        pid = status.pid if status.state is ProcessState.RUNNING else None
        seen = RollingNode(node.name, node.shard, pid)
        if pid is not None:
            try:
                role = await execute(backend, spec, "ROLE")
                replication = parse_info_fields(await execute(backend, spec, "INFO", "replication"))
                cluster = (
                    parse_info_fields(await execute(backend, spec, "CLUSTER", "INFO"))
                    if cluster_mode
                    else None
                )
                seen = parse_rolling_node(node.name, node.shard, pid, role, replication, cluster)
            except NodeError as e:
                log.debug("node %s not answering: %s", node.name, e)
        nodes.append(seen)
    # A replica's offset is read again, after every primary's: one at least as far as its
    # primary's then has every write the primary had acknowledged by then.
    for i, seen in enumerate(nodes):
        if not (seen.ready and seen.role == "slave"):
            continue
        try:
            replication = parse_info_fields(
                await execute(backend, targets[seen.name].spec, "INFO", "replication")
            )
        except NodeError:
            nodes[i] = RollingNode(seen.name, seen.shard, seen.pid)
            continue
        again = parse_rolling_node(seen.name, seen.shard, seen.pid, ["slave"], replication)
        nodes[i] = dataclasses.replace(again, cluster_ok=seen.cluster_ok)
    return tuple(nodes)


async def observe_role(backend: NodeBackend, spec: NodeSpec) -> str | None:
    """What ROLE says the node is ("master", "slave"); None when it does not answer."""
    try:
        reply = await execute(backend, spec, "ROLE")
    except NodeError:
        return None
    return str(reply[0]) if isinstance(reply, list) and reply else None


async def execute(backend: NodeBackend, spec: NodeSpec, *args: str | int) -> object:
    """One command on the node, over a connection of its own."""
    admin = backend.admin(spec)
    try:
        return await admin.execute(*args)
    finally:
        await admin.close()
