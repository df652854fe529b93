"""The provisioning/resource state a cluster or database moves to when an operation starts or ends."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from amr.model.enums import ProvisioningState, ResourceState
from amr.model.resources import Cluster, Database

R = TypeVar("R", Cluster, Database)


def plan_deleting(resource: R) -> R:
    """The resource as a delete leaves it until the reconciler has removed it."""
    return dataclasses.replace(
        resource, provisioning_state=ProvisioningState.DELETING, resource_state=ResourceState.DELETING
    )


def plan_running(resource: R) -> R:
    """The resource once its create or update has been carried out."""
    return dataclasses.replace(
        resource, provisioning_state=ProvisioningState.SUCCEEDED, resource_state=ResourceState.RUNNING
    )
