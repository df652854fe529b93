"""Test hosts: network namespaces joined to this machine by veth pairs, so that clients really come
from different source addresses. Needs root and iproute2 (both on CI machines; make test installs
iproute2 if missing).

Each host gets a /24 of its own: the namespace side is .2 (the client's source address) and this
machine's side is .1 (where the gateway listens). Traffic stays inside this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLIENT = Path(__file__).with_name("netns_client.py")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class NetHost:
    namespace: str
    address: str  # the client's source address, inside the namespace
    gateway_address: str  # this machine's end of the veth pair

    def client(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the test client inside the namespace and wait for it."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, str(CLIENT), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def hold(self, *args: str) -> subprocess.Popen[str]:
        """Start the test client in ``hold`` mode: it keeps one connection and answers commands."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, sys.executable, str(CLIENT), "hold", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )


@contextmanager
def network_hosts(count: int) -> Iterator[list[NetHost]]:
    """``count`` namespaces with veth links; removed afterwards even if a test fails."""
    tag = os.getpid() % 10000
    second = 100 + os.getpid() % 100
    hosts: list[NetHost] = []
    try:
        for i in range(count):
            ns, host_if, ns_if = f"amr{tag}h{i}", f"amv{tag}h{i}", f"amv{tag}n{i}"
            host_ip, ns_ip = f"10.{second}.{i}.1", f"10.{second}.{i}.2"
            _ip("netns", "add", ns)
            hosts.append(NetHost(ns, ns_ip, host_ip))
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{host_ip}/24", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", ns, "addr", "add", f"{ns_ip}/24", "dev", ns_if)
            _ip("-n", ns, "link", "set", ns_if, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield hosts
    finally:
        for i, host in enumerate(hosts):
            subprocess.run(["ip", "link", "del", f"amv{tag}h{i}"], capture_output=True)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
