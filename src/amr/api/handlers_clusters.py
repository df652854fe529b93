"""Microsoft.Cache/redisEnterprise: PUT, GET, PATCH, DELETE, lists, listSkusForScaling."""

from __future__ import annotations

import dataclasses
from typing import Any

from amr.api.conflicts import refuse_while_restarting
from amr.api.context import Request, Response, lro_headers, require_subscription, start_delete
from amr.api.handlers_groups import find_group
from amr.api.wire import parse_json_body
from amr.api.wire_resources import parse_cluster_patch, parse_cluster_put, render_cluster
from amr.errors import ArmError, Conflict
from amr.logic.arm.validation import validate_cluster_change, validate_cluster_name, validate_not_busy
from amr.logic.topology.placement import choose_node_ports, count_new_nodes, plan_shard_count, plan_used_ports
from amr.model.enums import ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, lookup_key
from amr.model.sku import SKUS, sku_by_name

_STATE_FIELDS = ("provisioning_state", "resource_state", "created_at", "host_name")


def cluster_not_found(group: str, name: str) -> ArmError:
    return ArmError(
        "ResourceNotFound",
        f"The Resource 'Microsoft.Cache/redisEnterprise/{name}' under resource group '{group}' was not found.",
        404,
    )


def find_cluster(req: Request) -> Cluster:
    sub = require_subscription(req)
    group, name = req.params["resourceGroupName"], req.params["clusterName"]
    cluster = req.services.store.get(Cluster, lookup_key(sub, group, name))
    if cluster is None:
        find_group(req, group)
        raise cluster_not_found(group, name)
    return cluster


def _same_desired(a: Cluster, b: Cluster) -> bool:
    strip: dict[str, Any] = {f: getattr(a, f) for f in _STATE_FIELDS}
    return dataclasses.replace(b, **strip) == a


async def put_cluster(req: Request) -> Response:
    sub = require_subscription(req)
    group_name, name = req.params["resourceGroupName"], req.params["clusterName"]
    validate_cluster_name(name)
    group = find_group(req, group_name)
    if group.provisioning_state is ProvisioningState.DELETING:
        raise ArmError("ResourceGroupBeingDeleted", f"Resource group '{group_name}' is being deleted.", 409)
    s = req.services
    new = parse_cluster_put(parse_json_body(req.body), sub, group.name, name, s.settings.gateway.public_host)
    current = s.store.get(Cluster, new.key)
    if current is None:
        created = dataclasses.replace(
            new,
            provisioning_state=ProvisioningState.CREATING,
            resource_state=ResourceState.CREATING,
            created_at=s.timestamp(),
        )
        s.store.insert(created)
        op = req.start_operation(created.id, created.location, "create")
        s.reconciler.notify()
        return Response(201, render_cluster(created), lro_headers(req, op, with_location=False))
    new = dataclasses.replace(new, name=current.name, resource_group=current.resource_group)
    return await _update_cluster(req, current, new, status=200)


async def patch_cluster(req: Request) -> Response:
    current = find_cluster(req)
    new = parse_cluster_patch(parse_json_body(req.body), current)
    return await _update_cluster(req, current, new, status=202)


async def _update_cluster(req: Request, current: Cluster, new: Cluster, status: int) -> Response:
    s = req.services
    if _same_desired(current, new):
        return Response(200, render_cluster(current))
    validate_not_busy(
        "cache", current.name, current.provisioning_state.busy, current.provisioning_state.value
    )
    refuse_while_restarting(req, s.store.list(Database, current.key + "/"), "update the cache")
    validate_cluster_change(current, new)
    if new.sku_name != current.sku_name:
        await _check_data_fits(req, current, new.sku_name)
    if new.high_availability is not current.high_availability:
        await _check_nodes_serve(req, current)
    _check_node_ports(req, current, new)
    updated = dataclasses.replace(
        new,
        provisioning_state=ProvisioningState.UPDATING,
        resource_state=ResourceState.SCALING if new.sku_name != current.sku_name else ResourceState.UPDATING,
    )
    s.store.replace(current, updated)
    op = req.start_operation(updated.id, updated.location, "update")
    s.reconciler.notify()
    return Response(status, render_cluster(updated), lro_headers(req, op, with_location=status == 202))


async def _check_data_fits(req: Request, cluster: Cluster, sku_name: str) -> None:
    sku = sku_by_name(sku_name)
    used = await _used_memory(req, cluster)
    if sku is not None and used >= sku.max_memory_bytes:
        raise ArmError(
            "InvalidSkuForScaling",
            f"The cache holds {used} bytes, which do not fit in {sku_name} ({sku.size_gb} GB). "
            "Choose a SKU from listSkusForScaling.",
            400,
            target="sku.name",
        )


def _check_node_ports(req: Request, current: Cluster, new: Cluster) -> None:
    """More shards (a SKU change) or a replica per shard (HA enabled) need node ports: refuse the
    change up front (409 PortRangeExhausted) when the node port range cannot hold them, rather than
    leave the cache scaling forever."""
    sku = sku_by_name(new.sku_name)
    if sku is None:
        return
    s = req.services
    ha = new.high_availability is Toggle.ENABLED
    cap = s.settings.engine.max_shards_per_database
    wanted = sum(
        count_new_nodes(plan_shard_count(sku, cap, db.clustering_policy), ha, db.nodes)
        for db in s.store.list(Database, current.key + "/")
    )
    if wanted:
        used = plan_used_ports(s.store.list(Database))
        g = s.settings.gateway
        choose_node_ports(wanted, (g.node_port_range_start, g.node_port_range_end), used, s.port_is_free)


async def _check_nodes_serve(req: Request, cluster: Cluster) -> None:
    """Enabling high availability adds a replica that copies its primary: with a node down there is
    nothing to copy from, and the update would stop halfway. Refuse it until the node serves again."""
    for db in req.services.store.list(Database, cluster.key + "/"):
        down = await req.services.reconciler.nodes_down(db)
        if down:
            raise Conflict(
                f"Cannot enable high availability while node {', '.join(down)} of database '{db.name}' "
                "does not serve: the new replica would have no primary to copy. amr restarts failed "
                "nodes by itself; retry once the database serves again."
            )


async def _used_memory(req: Request, cluster: Cluster) -> int:
    s = req.services
    total = 0
    for db in s.store.list(Database, cluster.key + "/"):
        total += await s.reconciler.used_memory(db)
    return total


async def get_cluster(req: Request) -> Response:
    return Response(200, render_cluster(find_cluster(req)))


async def list_clusters_in_group(req: Request) -> Response:
    group = find_group(req, req.params["resourceGroupName"])
    clusters = req.services.store.list(Cluster, group.key + "/")
    return Response(200, {"value": [render_cluster(c) for c in clusters]})


async def list_clusters(req: Request) -> Response:
    sub = require_subscription(req)
    clusters = req.services.store.list(Cluster, lookup_key(sub) + "/")
    return Response(200, {"value": [render_cluster(c) for c in clusters]})


async def delete_cluster(req: Request) -> Response:
    sub = require_subscription(req)
    group, name = req.params["resourceGroupName"], req.params["clusterName"]
    s = req.services
    cluster = s.store.get(Cluster, lookup_key(sub, group, name))
    if cluster is None:
        find_group(req, group)
        return Response(204)
    refuse_while_restarting(req, s.store.list(Database, cluster.key + "/"), "delete the cache")
    return start_delete(req, cluster, cluster.location)


async def list_skus_for_scaling(req: Request) -> Response:
    cluster = find_cluster(req)
    used = await _used_memory(req, cluster)
    skus = [
        {"name": sku.name, "sizeInGB": sku.size_gb}
        for sku in SKUS
        if not sku.flash and sku.name != cluster.sku_name and sku.max_memory_bytes > used
    ]
    return Response(200, {"skus": skus})
