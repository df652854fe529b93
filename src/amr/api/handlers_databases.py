"""Microsoft.Cache/redisEnterprise/databases: PUT, GET, PATCH, DELETE, list, keys, flush, restart and
upgradeDBRedisVersion."""

from __future__ import annotations

import dataclasses
import enum

from amr.api.conflicts import refuse_restart_while_busy, refuse_while_restarting
from amr.api.context import Request, Response, lro_headers, require_subscription, start_delete
from amr.api.handlers_clusters import find_cluster
from amr.api.wire import as_bool, as_enum, as_object, field, parse_json_body
from amr.api.wire_resources import DatabaseRequest, parse_database_request, render_database
from amr.audit import read_connection_events
from amr.errors import ArmError, Conflict, InvalidParameter, NodeError
from amr.logic.arm.validation import (
    validate_database_change,
    validate_database_create,
    validate_database_name,
    validate_not_busy,
    validate_persistence,
)
from amr.logic.operations.rolling import ACTION_RESTART, ACTION_ROLLING_RESTART, ACTION_UPGRADE
from amr.logic.topology.placement import (
    choose_database_port,
    choose_node_ports,
    count_new_nodes,
    plan_nodes,
    plan_shard_count,
    render_shard_note,
)
from amr.model.enums import ProvisioningState, ResourceState, Toggle
from amr.model.resources import Cluster, Database, lookup_key
from amr.model.sku import sku_by_name

_STATE_FIELDS = ("provisioning_state", "resource_state", "status_message", "created_at")


def database_not_found(cluster: str, name: str) -> ArmError:
    return ArmError(
        "ResourceNotFound",
        f"The Resource 'Microsoft.Cache/redisEnterprise/{cluster}/databases/{name}' was not found.",
        404,
    )


def find_database(req: Request) -> tuple[Cluster, Database]:
    cluster = find_cluster(req)
    name = req.params["databaseName"]
    db = req.services.store.get(Database, lookup_key(cluster.key, name))
    if db is None:
        raise database_not_found(cluster.name, name)
    return cluster, db


def _ready_cluster(req: Request) -> Cluster:
    cluster = find_cluster(req)
    if cluster.provisioning_state in (ProvisioningState.CREATING, ProvisioningState.DELETING):
        raise ArmError(
            "Conflict",
            f"The cache '{cluster.name}' is {cluster.provisioning_state.value.lower()}; wait until it is "
            "Succeeded before changing its database.",
            409,
        )
    return cluster


def _used_ports(req: Request) -> tuple[set[int], set[int]]:
    db_ports: set[int] = set()
    node_ports: set[int] = set()
    for db in req.services.store.list(Database):
        db_ports.add(db.port)
        for node in db.nodes:
            node_ports.update((node.port, node.port + 10000))
    return db_ports, node_ports


async def put_database(req: Request) -> Response:
    require_subscription(req)
    validate_database_name(req.params["databaseName"])
    cluster = _ready_cluster(req)
    request = parse_database_request(parse_json_body(req.body))
    s = req.services
    current = s.store.get(Database, lookup_key(cluster.key, "default"))
    if current is not None:
        new = dataclasses.replace(current, **request.fields)
        if request.port is not None and request.port != current.port:
            new = dataclasses.replace(new, port=request.port)
        return await _update_database(req, current, new, request, status=200)
    return await _create_database(req, cluster, request)


async def _create_database(req: Request, cluster: Cluster, request: DatabaseRequest) -> Response:
    s = req.services
    settings = s.settings
    sku = sku_by_name(cluster.sku_name)
    assert sku is not None  # validated when the cluster was accepted
    draft = Database(
        subscription_id=cluster.subscription_id,
        resource_group=cluster.resource_group,
        cluster_name=cluster.name,
        uid=s.new_uid(),
        port=0,
        primary_key=s.new_access_key(),
        secondary_key=s.new_access_key(),
        **request.fields,
    )
    validate_database_create(draft, request.extras)
    db_ports, node_ports = _used_ports(req)
    g = settings.gateway
    port = choose_database_port(
        request.port, (g.port_range_start, g.port_range_end), db_ports | node_ports, s.port_is_free
    )
    shards = plan_shard_count(sku, settings.engine.max_shards_per_database, draft.clustering_policy)
    ha = cluster.high_availability is Toggle.ENABLED
    ports = choose_node_ports(
        count_new_nodes(shards, ha, ()),
        (g.node_port_range_start, g.node_port_range_end),
        node_ports | db_ports | {port},
        s.port_is_free,
    )
    db = dataclasses.replace(
        draft,
        port=port,
        nodes=plan_nodes(draft.uid, shards, ha, (), ports),
        shards_for_sku=sku.shards,
        status_message=render_shard_note(sku, shards, draft.clustering_policy),
        created_at=s.timestamp(),
        provisioning_state=ProvisioningState.CREATING,
        resource_state=ResourceState.CREATING,
    )
    s.store.insert(db)
    op = req.start_operation(db.id, cluster.location, "create")
    s.reconciler.notify()
    return Response(201, render_database(db), lro_headers(req, op, with_location=False))


async def patch_database(req: Request) -> Response:
    _, current = find_database(req)
    request = parse_database_request(parse_json_body(req.body), base=current.persistence)
    new = dataclasses.replace(current, **request.fields)
    if request.port is not None:
        new = dataclasses.replace(new, port=request.port)
    return await _update_database(req, current, new, request, status=202)


def _same_desired(a: Database, b: Database) -> bool:
    strip = {f: getattr(a, f) for f in _STATE_FIELDS}
    return dataclasses.replace(b, **strip) == a


async def _update_database(
    req: Request, current: Database, new: Database, request: DatabaseRequest, status: int
) -> Response:
    s = req.services
    validate_persistence(new.persistence)
    if _same_desired(current, new) and not request.extras.modules and not request.extras.geo_replication:
        return Response(200, render_database(current))
    validate_not_busy(
        "database", current.name, current.provisioning_state.busy, current.provisioning_state.value
    )
    refuse_while_restarting(req, (current,), "update the database")
    cluster = find_cluster(req)
    if cluster.provisioning_state.busy:
        raise Conflict(
            f"Cannot update the database while its cache '{cluster.name}' is "
            f"{cluster.resource_state.value.lower()} ({cluster.provisioning_state.value}); wait for "
            "that operation to finish and retry."
        )
    validate_database_change(current, new, request.extras)
    updated = dataclasses.replace(
        new, provisioning_state=ProvisioningState.UPDATING, resource_state=ResourceState.UPDATING
    )
    s.store.replace(current, updated)
    op = req.start_operation(updated.id, cluster.location, "update")
    s.reconciler.notify()
    return Response(status, render_database(updated), lro_headers(req, op, with_location=status == 202))


async def get_database(req: Request) -> Response:
    return Response(200, render_database(find_database(req)[1]))


async def list_databases(req: Request) -> Response:
    cluster = find_cluster(req)
    dbs = req.services.store.list(Database, cluster.key + "/")
    return Response(200, {"value": [render_database(d) for d in dbs]})


async def delete_database(req: Request) -> Response:
    cluster = find_cluster(req)
    s = req.services
    db = s.store.get(Database, lookup_key(cluster.key, req.params["databaseName"]))
    if db is None:
        return Response(204)
    refuse_while_restarting(req, (db,), "delete the database")
    return start_delete(req, db, cluster.location)


def _keys(db: Database) -> dict[str, str]:
    return {"primaryKey": db.primary_key, "secondaryKey": db.secondary_key}


async def list_keys(req: Request) -> Response:
    return Response(200, _keys(find_database(req)[1]))


async def regenerate_key(req: Request) -> Response:
    _, db = find_database(req)
    body = parse_json_body(req.body)
    key_type = as_enum(field(body, "keyType"), _KeyType, "keyType")
    if key_type is None:
        raise InvalidParameter("'keyType' is required. Allowed values: Primary, Secondary.", "keyType")
    validate_not_busy("database", db.name, db.provisioning_state.busy, db.provisioning_state.value)
    refuse_while_restarting(req, (db,), "regenerate a key")
    s = req.services
    key = s.new_access_key()
    if key_type is _KeyType.PRIMARY:
        updated = dataclasses.replace(db, primary_key=key)
    else:
        updated = dataclasses.replace(db, secondary_key=key)
    s.store.replace(db, updated)
    try:
        await s.reconciler.apply_database(updated)
    except NodeError as e:
        raise ArmError(
            "KeyRegenerationPending",
            f"The new key is stored but could not be applied to the running nodes yet: {e}. amr keeps retrying.",
            503,
        ) from e
    return Response(200, _keys(updated))


async def flush(req: Request) -> Response:
    cluster, db = find_database(req)
    body = parse_json_body(req.body, required=False)
    ids = field(as_object(body, "parameters"), "ids") if body else None
    if ids:
        raise InvalidParameter(
            "'ids' names linked databases of a geo-replication group; this database is not geo-replicated.",
            "ids",
        )
    validate_not_busy("database", db.name, db.provisioning_state.busy, db.provisioning_state.value)
    refuse_while_restarting(req, (db,), "flush the database")
    op = req.start_operation(db.id, cluster.location, "flush")
    req.services.reconciler.start_flush(db, op)
    return Response(202, None, lro_headers(req, op, with_location=True))


async def restart(req: Request) -> Response:
    """Restart the database's nodes (an amr extension, body ``{"rolling": true|false}``): rolling, one
    node at a time with a switchover per shard, keeps a database with high availability serving and
    loses no acknowledged write; otherwise every node restarts at once. 202 with the polling headers."""
    cluster, db = find_database(req)
    body = parse_json_body(req.body, required=False)
    rolling = as_bool(field(body, "rolling"), "rolling") or False
    return _start_restart(req, cluster, db, ACTION_ROLLING_RESTART if rolling else ACTION_RESTART)


async def upgrade_redis_version(req: Request) -> Response:
    """Azure's upgradeDBRedisVersion: a rolling restart onto the engine binary the settings name (202
    only, final state via Location)."""
    cluster, db = find_database(req)
    return _start_restart(req, cluster, db, ACTION_UPGRADE)


def _start_restart(req: Request, cluster: Cluster, db: Database, action: str) -> Response:
    refuse_restart_while_busy(req, cluster, db, action)
    op = req.start_operation(db.id, cluster.location, action)
    req.services.reconciler.start_restart(db, op)
    return Response(202, None, lro_headers(req, op, with_location=True))


class _KeyType(enum.StrEnum):
    PRIMARY = "Primary"
    SECONDARY = "Secondary"


async def connection_events(req: Request) -> Response:
    """The database's recent connection events from the gateway's audit log (an amr extension, like
    Azure's REDConnectionEvents). ``$top`` (default 100, at most 10000) limits how many."""
    _, db = find_database(req)
    raw_top = req.query.get("$top") or req.query.get("top") or "100"
    if not raw_top.isdigit() or not 1 <= int(raw_top) <= 10000:
        raise InvalidParameter(f"'$top' must be a whole number from 1 to 10000, not '{raw_top}'.", "$top")
    events = read_connection_events(req.services.settings, db.id, int(raw_top))
    return Response(200, {"value": events})
