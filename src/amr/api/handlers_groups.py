"""Microsoft.Resources resource groups: PUT, GET, DELETE (long-running), list."""

from __future__ import annotations

import dataclasses

from amr.api.context import Request, Response, require_subscription
from amr.api.wire import parse_json_body
from amr.api.wire_resources import parse_group, render_group
from amr.errors import ArmError
from amr.logic.arm.locations import location_key
from amr.logic.arm.validation import validate_group_name
from amr.model.enums import OperationStatus, ProvisioningState
from amr.model.resources import Operation, ResourceGroup, lookup_key


def group_not_found(name: str) -> ArmError:
    return ArmError("ResourceGroupNotFound", f"Resource group '{name}' could not be found.", 404)


def find_group(req: Request, name: str) -> ResourceGroup:
    sub = require_subscription(req)
    group = req.services.store.get(ResourceGroup, lookup_key(sub, name))
    if group is None:
        raise group_not_found(name)
    return group


async def put_group(req: Request) -> Response:
    sub = require_subscription(req)
    name = req.params["resourceGroupName"]
    validate_group_name(name)
    new = parse_group(parse_json_body(req.body), sub, name)
    store = req.services.store
    current = store.get(ResourceGroup, new.key)
    if current is None:
        store.insert(new)
        return Response(201, render_group(new))
    if current.provisioning_state is ProvisioningState.DELETING:
        raise ArmError("ResourceGroupBeingDeleted", f"Resource group '{name}' is being deleted.", 409)
    if location_key(current.location) != location_key(new.location):
        raise ArmError(
            "InvalidResourceGroupLocation",
            f"Resource group '{name}' already exists in location '{current.location}'; a resource group's "
            f"location cannot be changed to '{new.location}'.",
            409,
        )
    updated = dataclasses.replace(current, tags=new.tags)
    if updated != current:
        store.replace(current, updated)
    return Response(200, render_group(updated))


async def get_group(req: Request) -> Response:
    return Response(200, render_group(find_group(req, req.params["resourceGroupName"])))


async def list_groups(req: Request) -> Response:
    sub = require_subscription(req)
    groups = req.services.store.list(ResourceGroup, lookup_key(sub) + "/")
    return Response(200, {"value": [render_group(g) for g in groups]})


async def delete_group(req: Request) -> Response:
    group = find_group(req, req.params["resourceGroupName"])
    store = req.services.store
    op = req.start_operation(group.id, group.location, "delete")
    if group.provisioning_state is not ProvisioningState.DELETING:
        store.replace(group, dataclasses.replace(group, provisioning_state=ProvisioningState.DELETING))
    req.services.reconciler.notify()
    location = f"{req.base_url}/subscriptions/{group.subscription_id}/operationresults/{op.id}?api-version={req.api_version}"
    return Response(202, None, {"Location": location, "Retry-After": "1"})


async def get_group_operation_result(req: Request) -> Response:
    require_subscription(req)
    op = req.services.store.get(Operation, req.params["operationId"])
    if op is None:
        raise ArmError("OperationNotFound", f"Operation '{req.params['operationId']}' was not found.", 404)
    if not op.status.done:
        return Response(202, None, {"Location": req.url, "Retry-After": "1"})
    if op.status is OperationStatus.FAILED and op.error:
        raise ArmError(op.error.code, op.error.message, 409)
    return Response(200, None)


async def check_group_exists(req: Request) -> Response:
    """HEAD on a resource group (az group exists): 204 when it exists, 404 when not."""
    find_group(req, req.params["resourceGroupName"])
    return Response(204)
