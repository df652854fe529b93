"""Port placement and node planning."""

from __future__ import annotations

import pytest

from amr.errors import ArmError
from amr.logic.topology.placement import (
    choose_database_port,
    choose_node_ports,
    count_new_nodes,
    plan_nodes,
    plan_shard_count,
)
from amr.model.enums import ClusteringPolicy
from amr.model.node import Role
from amr.model.resources import NodeAssignment
from amr.model.sku import sku_by_name

RANGE = (10000, 10004)


def all_free(port: int) -> bool:
    return True


def test_requested_port_in_range_and_free() -> None:
    assert choose_database_port(10003, RANGE, [10000], all_free) == 10003


@pytest.mark.parametrize("port", [9999, 10005, 1, 65535])
def test_requested_port_out_of_range(port: int) -> None:
    with pytest.raises(ArmError) as e:
        choose_database_port(port, RANGE, [], all_free)
    assert (e.value.code, e.value.status, e.value.target) == ("InvalidParameter", 400, "properties.port")
    assert "10000-10004" in e.value.message


def test_requested_port_taken_by_another_database() -> None:
    with pytest.raises(ArmError) as e:
        choose_database_port(10001, RANGE, [10001], all_free)
    assert (e.value.code, e.value.status) == ("PortInUse", 409)


def test_requested_port_busy_on_host() -> None:
    with pytest.raises(ArmError, match="in use"):
        choose_database_port(10001, RANGE, [], lambda p: p != 10001)


def test_next_free_port() -> None:
    assert choose_database_port(None, RANGE, [], all_free) == 10000
    assert choose_database_port(None, RANGE, [10000, 10001], all_free) == 10002
    assert choose_database_port(None, RANGE, [10000], lambda p: p != 10001) == 10002


def test_database_port_range_exhausted() -> None:
    with pytest.raises(ArmError) as e:
        choose_database_port(None, RANGE, range(10000, 10005), all_free)
    assert (e.value.code, e.value.status) == ("PortRangeExhausted", 409)


def test_node_ports_skip_taken_ports_and_taken_bus_ports() -> None:
    node_range = (8500, 8509)
    # 8500 taken; 8501's bus port (18501) taken; 8502's bus port busy on the host.
    used = [8500, 18501]
    ports = choose_node_ports(3, node_range, used, lambda p: p != 18502)
    assert ports == [8503, 8504, 8505]


def test_node_ports_exhausted() -> None:
    with pytest.raises(ArmError) as e:
        choose_node_ports(3, (8500, 8502), [18501], all_free)
    assert e.value.code == "PortRangeExhausted"
    assert choose_node_ports(0, (8500, 8502), [], all_free) == []


def test_shard_count_is_capped() -> None:
    sku = sku_by_name("Balanced_B20")
    assert sku is not None and sku.shards == 6
    oss = ClusteringPolicy.OSS_CLUSTER
    assert plan_shard_count(sku, 1, oss) == 1
    assert plan_shard_count(sku, 4, oss) == 4
    assert plan_shard_count(sku, 100, oss) == 6
    assert plan_shard_count(sku, 0, oss) == 1
    # EnterpriseCluster shards like OSSCluster (the gateway routes by slot); NoCluster runs one.
    assert plan_shard_count(sku, 1, ClusteringPolicy.ENTERPRISE_CLUSTER) == 1
    assert plan_shard_count(sku, 4, ClusteringPolicy.ENTERPRISE_CLUSTER) == 4
    assert plan_shard_count(sku, 100, ClusteringPolicy.ENTERPRISE_CLUSTER) == 6
    assert plan_shard_count(sku, 100, ClusteringPolicy.NO_CLUSTER) == 1


def test_plan_nodes_new_database() -> None:
    nodes = plan_nodes("d1", 2, True, (), [8500, 8501, 8502, 8503])
    assert nodes == (
        NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8500),
        NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501),
        NodeAssignment("d1-1-0", 1, Role.PRIMARY, 8502),
        NodeAssignment("d1-1-1", 1, Role.REPLICA, 8503),
    )
    assert plan_nodes("d1", 1, False, (), [8600]) == (NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8600),)


def test_plan_nodes_keeps_existing_and_adds_replica_when_ha_enabled() -> None:
    existing = (NodeAssignment("d1-0-0", 0, Role.PRIMARY, 8507),)
    assert count_new_nodes(1, True, existing) == 1
    nodes = plan_nodes("d1", 1, True, existing, [8501])
    assert nodes == (existing[0], NodeAssignment("d1-0-1", 0, Role.REPLICA, 8501))
    # Nothing to add: the plan is the existing nodes, and no port is needed.
    assert count_new_nodes(1, True, nodes) == 0
    assert plan_nodes("d1", 1, True, nodes, []) == nodes
    assert count_new_nodes(1, False, existing) == 0
