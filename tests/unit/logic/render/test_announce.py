"""What clustered nodes announce to clients: the public address, never the internal one."""

from __future__ import annotations

import pytest

from amr.logic.render.announce import (
    ClientAnnouncement,
    choose_client_announcement,
    engine_announces_client_address,
    render_announce_settings,
)
from amr.model.node import EngineVersion

VALKEY_8 = EngineVersion("valkey", 8, 1)


@pytest.mark.parametrize(
    "public_host, bind_hosts, expected",
    [
        # The default: localhost, where the gateway listens on 127.0.0.1; the address everywhere.
        ("localhost", ("127.0.0.1",), ClientAnnouncement("127.0.0.1", "ip")),
        ("LOCALHOST", ("0.0.0.0",), ClientAnnouncement("127.0.0.1", "ip")),
        ("localhost", ("192.168.1.20", "127.0.0.5"), ClientAnnouncement("127.0.0.5", "ip")),
        # An address as the public host: that address, which the certificate names.
        ("192.168.1.20", ("0.0.0.0",), ClientAnnouncement("192.168.1.20", "ip")),
        # A host name: clients resolve it themselves; the address shown beside it is one the
        # gateway listens on, never the wildcard.
        ("cache.example", ("192.168.1.20",), ClientAnnouncement("192.168.1.20", "hostname")),
        ("cache.example", ("0.0.0.0", "::1"), ClientAnnouncement("127.0.0.1", "hostname")),
        ("cache.example", ("::", "10.0.0.7"), ClientAnnouncement("10.0.0.7", "hostname")),
    ],
)
def test_choose_client_announcement(
    public_host: str, bind_hosts: tuple[str, ...], expected: ClientAnnouncement
) -> None:
    assert choose_client_announcement(public_host, bind_hosts, VALKEY_8) == expected


@pytest.mark.parametrize(
    "engine, can",
    [
        (EngineVersion("valkey", 8, 0), True),
        (EngineVersion("valkey", 9, 0), True),
        (EngineVersion("valkey", 7, 2), False),
        (EngineVersion("redis", 7, 4), False),
        (EngineVersion("redis", 8, 0), False),
        (None, False),
    ],
)
def test_only_engines_with_a_client_address_announce_one(engine: EngineVersion | None, can: bool) -> None:
    assert engine_announces_client_address(engine) is can
    announced = choose_client_announcement("localhost", ("127.0.0.1",), engine)
    assert (announced is not None) is can


def test_settings_name_the_public_host_and_address() -> None:
    settings = dict(render_announce_settings("localhost", ClientAnnouncement("127.0.0.1", "ip")))
    assert settings == {
        "cluster-announce-hostname": "localhost",
        "cluster-announce-client-ipv4": "127.0.0.1",
        "cluster-preferred-endpoint-type": "ip",
    }
    # An engine without a client address: the host name in CLUSTER SLOTS, as before.
    assert dict(render_announce_settings("localhost", None)) == {
        "cluster-announce-hostname": "localhost",
        "cluster-preferred-endpoint-type": "hostname",
    }
