"""Firewall rules, public network access and connection limits, with clients on real test hosts
(network namespaces), so the gateway sees real, different source addresses."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.amr_service import AmrService, wait_until
from tests.integration.netns import NetHost, network_hosts

GROUP, CACHE = "rg-net", "net"
LIMIT = 3


@dataclass
class World:
    service: AmrService
    public_a: NetHost
    public_b: NetHost
    private: NetHost
    port: int
    key: str

    def ping(self, host: NetHost) -> str:
        result = host.client("ping", host.gateway_address, str(self.port), self.key, self.service.ca_file)
        return (result.stdout + result.stderr).strip()

    def amr(self, *args: str) -> None:
        self.service.amr(*args, check=True)

    def rules(self, *hosts: NetHost) -> None:
        """Make the firewall exactly one rule per host given (none: no rules)."""
        existing = self.service.amr_json(
            "redisenterprise", "firewall-rule", "list", "--cluster-name", CACHE, "-g", GROUP
        )
        for rule in existing:
            self.amr(
                "redisenterprise",
                "firewall-rule",
                "delete",
                "--cluster-name",
                CACHE,
                "-g",
                GROUP,
                "-n",
                rule["name"],
                "--yes",
            )
        for i, host in enumerate(hosts):
            self.amr("redisenterprise", "firewall-rule", "create", "--cluster-name", CACHE, "-g", GROUP,
                     "-n", f"host{i}", "--start-ip", host.address, "--end-ip", host.address)  # fmt: skip

    def events(self) -> list[dict[str, object]]:
        return self.service.amr_json(
            "redisenterprise",
            "database",
            "connection-events",
            "--cluster-name",
            CACHE,
            "-g",
            GROUP,
            "--top",
            "1000",
        )


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with network_hosts(3) as (a, b, p):
        service = AmrService(
            extra_env={
                "AMR_GATEWAY_BIND_HOST": ",".join(
                    ["127.0.0.1", a.gateway_address, b.gateway_address, p.gateway_address]
                ),
                "AMR_GATEWAY_PRIVATE_NETWORKS": f"{p.address}/32",
                "AMR_GATEWAY_MAX_CONNECTIONS_PER_DATABASE": str(LIMIT),
            }
        )
        try:
            service.start()
            service.amr("group", "create", "-n", GROUP, "-l", "eastus", check=True)
            service.amr("redisenterprise", "create", "-n", CACHE, "-g", GROUP, "-l", "eastus", "--sku", "Balanced_B0",
                        "--high-availability", "Disabled", "--clustering-policy", "NoCluster",
                        "--access-keys-authentication", "Enabled", check=True)  # fmt: skip
            db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", CACHE, "-g", GROUP)
            keys = service.amr_json(
                "redisenterprise", "database", "list-keys", "--cluster-name", CACHE, "-g", GROUP
            )
            yield World(service, a, b, p, db["properties"]["port"], keys["primaryKey"])
        finally:
            service.destroy()


def _until(world: World, host: NetHost, expect: str, timeout: float = 5.0) -> float:
    """Seconds from now until a ping from ``host`` that started then got a result containing ``expect``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        probe = time.monotonic()
        result = world.ping(host)
        if expect in result:
            return probe - started
        time.sleep(0.05)
    raise AssertionError(f"{host.address} never got {expect!r} in {timeout}s; last: {result}")


def test_without_rules_every_source_connects(world: World) -> None:
    world.rules()
    for host in (world.public_a, world.public_b, world.private):
        assert world.ping(host) == "PONG"


def test_rules_let_in_only_their_sources_and_private_networks(world: World) -> None:
    world.rules(world.public_a)
    # The gateway applies the rule to new connections within a second.
    assert _until(world, world.public_b, "ERROR", timeout=3) < 1.0
    assert world.ping(world.public_a) == "PONG"
    assert world.ping(world.private) == "PONG"
    events = world.events()
    assert any(e["event"] == "firewall_deny" and e["source"] == world.public_b.address for e in events)
    world.rules()
    _until(world, world.public_b, "PONG")


def test_a_rule_change_closes_open_connections_it_no_longer_allows(world: World) -> None:
    world.rules(world.public_a, world.public_b)
    denied = world.public_a.hold(
        world.public_a.gateway_address, str(world.port), world.key, world.service.ca_file
    )
    allowed = world.public_b.hold(
        world.public_b.gateway_address, str(world.port), world.key, world.service.ca_file
    )
    try:
        for held in (denied, allowed):
            assert held.stdout is not None and held.stdin is not None
            assert held.stdout.readline().strip() == "READY"
        world.rules(world.public_b)

        def answer(held: subprocess.Popen[str]) -> str:
            assert held.stdin is not None and held.stdout is not None
            held.stdin.write("ping\n")
            held.stdin.flush()
            return held.stdout.readline().strip()

        started = time.monotonic()
        wait_until(
            lambda: answer(denied).startswith("CLOSED"),
            3,
            interval=0.1,
            what="the denied connection to close",
        )
        assert time.monotonic() - started < 1.5
        assert answer(allowed) == "PONG"  # the same connection, still open
        assert any(
            e["event"] == "disconnect"
            and e["source"] == world.public_a.address
            and e.get("reason") == "firewall"
            for e in world.events()
        )
    finally:
        for held in (denied, allowed):
            held.kill()
            held.wait()
        world.rules()


def test_public_network_access_disabled_admits_only_private_networks(world: World) -> None:
    world.rules()
    world.amr("redisenterprise", "update", "-n", CACHE, "-g", GROUP, "--public-network-access", "Disabled")
    try:
        _until(world, world.public_a, "ERROR")
        assert "ERROR" in world.ping(world.public_b)
        assert world.ping(world.private) == "PONG"
    finally:
        world.amr("redisenterprise", "update", "-n", CACHE, "-g", GROUP, "--public-network-access", "Enabled")
    _until(world, world.public_a, "PONG")


def test_connections_over_the_limit_are_refused_and_others_unaffected(world: World) -> None:
    world.rules()
    held = [
        world.public_a.hold(world.public_a.gateway_address, str(world.port), world.key, world.service.ca_file)
        for _ in range(LIMIT)
    ]
    try:
        for h in held:
            assert h.stdout is not None and h.stdout.readline().strip() == "READY"
        refused = world.ping(world.public_b)
        assert "max number of clients reached" in refused
        assert any(
            e["event"] == "limit_deny" and e["source"] == world.public_b.address for e in world.events()
        )
        held[0].kill()
        held[0].wait()
        _until(world, world.public_b, "PONG")
        for h in held[1:]:
            assert h.stdin is not None and h.stdout is not None
            h.stdin.write("ping\n")
            h.stdin.flush()
            assert h.stdout.readline().strip() == "PONG"
    finally:
        for h in held:
            h.kill()
            h.wait()
