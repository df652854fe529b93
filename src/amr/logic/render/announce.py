"""What a clustered database's nodes tell clients about where every node is.

A cluster client learns the topology from ``CLUSTER SLOTS``, ``SHARDS`` and ``NODES`` and from
``MOVED``/``ASK`` redirects, and then connects to each node itself. Every node has a public port
(the gateway's per-node listener, the same number as its internal port), but it listens on the
internal address, which clients can neither reach nor should see. The engine's cluster bus needs
that internal address (the nodes find each other by it), so the public one is announced to clients
only: ``cluster-announce-client-ipv4`` (valkey 8) replaces the address in every topology reply to a
client (the gateway reaches nodes over unix sockets, which the engine counts as IPv4 clients), and
``cluster-preferred-endpoint-type`` says whether ``CLUSTER SLOTS`` and redirects name that address
or the public host name (``cluster-announce-hostname``).

An address when the public host is an address or ``localhost`` (the default): clients then see one
name for a node everywhere, ``127.0.0.1:8500`` in ``CLUSTER SLOTS``, ``NODES`` and redirects alike,
as from a plain Valkey Cluster, and the server certificate names it. A host name otherwise: clients
resolve it themselves (the server's view of its own address may not be theirs) and TLS checks it;
``CLUSTER NODES`` still shows the address, as the engine has no place for a name there.

The bus port ``CLUSTER NODES`` shows beside the address (the node's port + 10000) leads nowhere on
the public address: the bus listens only on the internal one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from amr.model.node import EngineVersion

# The first engine with cluster-announce-client-ipv4: valkey 8.0.
_CLIENT_ADDRESS_SINCE = ("valkey", 8)
_LOCALHOST_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class ClientAnnouncement:
    """The public address a clustered node gives clients for itself and its peers, and whether
    ``CLUSTER SLOTS`` and redirects name that address (``ip``) or the public host (``hostname``)."""

    address: str
    endpoint_type: str


def _ipv4(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def engine_announces_client_address(engine: EngineVersion | None) -> bool:
    """Whether ``engine`` can announce an address to clients other than the one its peers use."""
    if engine is None:
        return False
    name, since = _CLIENT_ADDRESS_SINCE
    return engine.name == name and engine.major >= since


def choose_client_announcement(
    public_host: str, bind_hosts: tuple[str, ...], engine: EngineVersion | None
) -> ClientAnnouncement | None:
    """What clustered nodes announce to clients (see the module's docstring), or None where the
    engine cannot announce a client address (an older engine shows its internal one).

    The address is the public host's when it is an IPv4 address, else the first IPv4 address the
    gateway listens on (not the wildcard), else 127.0.0.1."""
    if not engine_announces_client_address(engine):
        return None
    literal = _ipv4(public_host)
    if literal is not None:
        return ClientAnnouncement(literal, "ip")
    listening = [a for a in (_ipv4(h) for h in bind_hosts) if a is not None and a != "0.0.0.0"]
    if public_host.strip().lower() == "localhost":
        loopback = [a for a in listening if ipaddress.ip_address(a).is_loopback]
        return ClientAnnouncement(loopback[0] if loopback else _LOCALHOST_ADDRESS, "ip")
    return ClientAnnouncement(listening[0] if listening else _LOCALHOST_ADDRESS, "hostname")


def render_announce_settings(
    public_host: str, announcement: ClientAnnouncement | None
) -> tuple[tuple[str, str], ...]:
    """The engine settings that make a clustered node announce ``announcement`` to clients (and the
    public host as its host name); without one, the host name only, named in ``CLUSTER SLOTS``."""
    settings = [("cluster-announce-hostname", public_host)]
    if announcement is None:
        return (*settings, ("cluster-preferred-endpoint-type", "hostname"))
    return (
        *settings,
        ("cluster-announce-client-ipv4", announcement.address),
        ("cluster-preferred-endpoint-type", announcement.endpoint_type),
    )
