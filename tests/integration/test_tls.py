"""TLS as Azure offers it: 1.2 and 1.3 only, no plaintext on an Encrypted port, a Plaintext port that
refuses TLS cleanly, and certificate rotation without dropping open connections."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509

from amr.pki import ensure_pki
from amr.settings import Settings
from tests.integration.amr_service import AmrService, wait_until

GROUP = "rg-tls"


@pytest.fixture(scope="module")
def ports(amr_service: AmrService) -> Iterator[dict[str, object]]:
    amr_service.amr("group", "create", "-n", GROUP, "-l", "eastus", check=True)
    out: dict[str, object] = {}
    for name, protocol in (("enc", "Encrypted"), ("plain", "Plaintext")):
        amr_service.amr("redisenterprise", "create", "-n", name, "-g", GROUP, "-l", "eastus", "--sku", "Balanced_B0",
                        "--high-availability", "Disabled", "--clustering-policy", "NoCluster",
                        "--client-protocol", protocol, "--access-keys-authentication", "Enabled", check=True)  # fmt: skip
        db = amr_service.amr_json("redisenterprise", "database", "show", "--cluster-name", name, "-g", GROUP)
        keys = amr_service.amr_json(
            "redisenterprise", "database", "list-keys", "--cluster-name", name, "-g", GROUP
        )
        out[name] = db["properties"]["port"]
        out[f"{name}_key"] = keys["primaryKey"]
    yield out


def _tls_context(service: AmrService, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=service.ca_file)
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _serial(service: AmrService, port: int) -> int:
    with socket.create_connection(("localhost", port), timeout=5) as raw:
        with _tls_context(service).wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_accepted(
    amr_service: AmrService, ports: dict[str, object], version: ssl.TLSVersion
) -> None:
    context = _tls_context(amr_service)
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("localhost", ports["enc"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert (
                tls.version()
                == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            )
            tls.sendall(b"PING\r\n")
            assert tls.recv(100).startswith(b"-NOAUTH")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_below_12_is_refused(
    amr_service: AmrService, ports: dict[str, object], version: ssl.TLSVersion
) -> None:
    try:
        context = _tls_context(amr_service, maximum=version)
    except ssl.SSLError:
        pytest.fail("this Python's OpenSSL cannot even offer old TLS versions")
    with socket.create_connection(("localhost", ports["enc"]), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            context.wrap_socket(raw, server_hostname="localhost")


def test_plaintext_on_an_encrypted_port_gets_no_redis_answer(
    amr_service: AmrService, ports: dict[str, object]
) -> None:
    with socket.create_connection(("localhost", ports["enc"]), timeout=5) as raw:
        raw.sendall(b"PING\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""
    assert b"PONG" not in answer and not answer.startswith(b"-NOAUTH")


def test_a_plaintext_database_refuses_tls_cleanly(amr_service: AmrService, ports: dict[str, object]) -> None:
    with socket.create_connection(("localhost", ports["plain"]), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            _tls_context(amr_service).wrap_socket(raw, server_hostname="localhost")
    # ... and keeps serving plaintext clients.
    assert redis.Redis("localhost", ports["plain"], password=ports["plain_key"]).ping() is True


def test_rotation_keeps_open_connections_and_new_ones_see_the_new_certificate(
    amr_service: AmrService, ports: dict[str, object]
) -> None:
    port = ports["enc"]
    assert isinstance(port, int)
    before = _serial(amr_service, port)
    client = redis.Redis(
        "localhost", port, password=ports["enc_key"], ssl=True, ssl_ca_certs=amr_service.ca_file
    )
    client.set("k", "before")
    client_id = client.client_id()
    api_before = _serial(amr_service, amr_service.api_port)

    amr_service.amr("pki", "rotate", check=True)

    wait_until(
        lambda: _serial(amr_service, port) != before, 3, what="the gateway to serve the new certificate"
    )
    wait_until(
        lambda: _serial(amr_service, amr_service.api_port) != api_before, 3, what="the API to serve it"
    )
    assert client.client_id() == client_id  # the same connection, still open
    assert client.get("k") == b"before"
    fresh = redis.Redis(
        "localhost", port, password=ports["enc_key"], ssl=True, ssl_ca_certs=amr_service.ca_file
    )
    assert fresh.ping() is True


def test_a_user_supplied_certificate_is_served_and_never_rewritten(tmp_path: Path) -> None:
    # The user's own CA and certificate (made here with a throwaway amr PKI, which is a different CA).
    own = Settings(home=tmp_path / "own")
    ensure_pki(own)
    cert_bytes = own.server_cert_file.read_bytes()
    service = AmrService(
        extra_env={
            "AMR_TLS_CERT_FILE": str(own.server_cert_file),
            "AMR_TLS_KEY_FILE": str(own.server_key_file),
            "AMR_TLS_CA_FILE": str(own.ca_cert_file),  # so amr's CLI trusts it
        }
    )
    try:
        service.start()
        service.amr("group", "create", "-n", "rg", "-l", "eastus", check=True)
        service.amr("redisenterprise", "create", "-n", "own", "-g", "rg", "-l", "eastus", "--sku", "Balanced_B0",
                    "--high-availability", "Disabled", "--clustering-policy", "NoCluster",
                    "--access-keys-authentication", "Enabled", check=True)  # fmt: skip
        port = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "own", "-g", "rg")[
            "properties"
        ]["port"]
        key = service.amr_json(
            "redisenterprise", "database", "list-keys", "--cluster-name", "own", "-g", "rg"
        )["primaryKey"]
        client = redis.Redis("localhost", port, password=key, ssl=True, ssl_ca_certs=str(own.ca_cert_file))
        assert client.ping() is True
        with pytest.raises(redis.ConnectionError):  # amr's own CA did not issue what is served
            redis.Redis("localhost", port, password=key, ssl=True, ssl_ca_certs=service.ca_file).ping()
        assert service.amr_json("account", "show")["caFile"] == str(own.ca_cert_file)
        refused = service.amr("pki", "rotate")
        assert refused.returncode != 0 and "user-supplied" in refused.stderr
        assert own.server_cert_file.read_bytes() == cert_bytes
    finally:
        service.destroy()
