"""The local CA: file modes, SANs, idempotence, re-issue, and that stdlib ssl verifies the result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from amr.pki import ensure_pki, issue_server_certificate, server_certificate_sans
from amr.settings import GatewaySettings, Settings


def _settings(home: Path, public_host: str = "localhost") -> Settings:
    return Settings(home=home, gateway=GatewaySettings(public_host=public_host))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_creates_files_with_private_modes(tmp_path: Path) -> None:
    s = _settings(tmp_path / "home")
    ensure_pki(s)
    assert _mode(s.pki_dir) == 0o700
    assert _mode(s.pki_dir / "ca.key") == 0o600
    assert _mode(s.server_key_file) == 0o600
    assert s.ca_cert_file.exists() and s.server_cert_file.exists()
    assert not [p for p in s.pki_dir.iterdir() if p.name.endswith(".tmp")]


def test_ca_is_a_ca(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    ca = _cert(s.ca_cert_file)
    assert ca.subject.rfc4514_string() == "CN=amr local CA"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3600)


def test_server_cert_sans_and_usage(tmp_path: Path) -> None:
    s = _settings(tmp_path, public_host="redis.example.test")
    ensure_pki(s)
    dns, ips = server_certificate_sans(s.server_cert_file)
    assert set(dns) == {"localhost", "redis.example.test"}
    assert set(ips) == {"127.0.0.1", "::1"}
    cert = _cert(s.server_cert_file)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert cert.issuer == _cert(s.ca_cert_file).subject
    cert.verify_directly_issued_by(_cert(s.ca_cert_file))
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < dt.timedelta(days=400)


def test_ip_public_host_becomes_ip_san(tmp_path: Path) -> None:
    s = _settings(tmp_path, public_host="192.0.2.7")
    ensure_pki(s)
    dns, ips = server_certificate_sans(s.server_cert_file)
    assert "192.0.2.7" in ips and "192.0.2.7" not in dns


def test_idempotent(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    before = {p.name: p.read_bytes() for p in s.pki_dir.iterdir()}
    ensure_pki(s)
    after = {p.name: p.read_bytes() for p in s.pki_dir.iterdir()}
    assert before == after


def test_reissues_when_public_host_changes(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    ca_before = s.ca_cert_file.read_bytes()
    key_before = s.server_key_file.read_bytes()
    s2 = dataclasses.replace(s, gateway=GatewaySettings(public_host="cache.internal.test"))
    ensure_pki(s2)
    assert s.ca_cert_file.read_bytes() == ca_before
    assert s.server_key_file.read_bytes() != key_before
    dns, _ = server_certificate_sans(s.server_cert_file)
    assert "cache.internal.test" in dns
    assert _mode(s.server_key_file) == 0o600


def test_issue_server_certificate_rotates_but_keeps_ca(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    ca_before = s.ca_cert_file.read_bytes()
    serial_before = _cert(s.server_cert_file).serial_number
    issue_server_certificate(s)
    assert s.ca_cert_file.read_bytes() == ca_before
    assert _cert(s.server_cert_file).serial_number != serial_before


def test_reissues_missing_server_key(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    os.unlink(s.server_key_file)
    ensure_pki(s)
    assert s.server_key_file.exists()


def _handshake(s: Settings, server_hostname: str, connect_host: str) -> str:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(s.server_cert_file, s.server_key_file)
    family = socket.AF_INET6 if ":" in connect_host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.bind((connect_host, 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = lsock.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"+OK\r\n")
        except BaseException as e:  # reported through the client side's failure
            errors.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(s.ca_cert_file))
        with socket.create_connection((connect_host, port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                return tls.recv(16).decode()
    finally:
        t.join(5)
        lsock.close()


@pytest.mark.parametrize(
    ("server_hostname", "connect_host"),
    [("localhost", "127.0.0.1"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1")],
)
def test_default_ssl_context_verifies(tmp_path: Path, server_hostname: str, connect_host: str) -> None:
    if connect_host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    s = _settings(tmp_path)
    ensure_pki(s)
    try:
        assert _handshake(s, server_hostname, connect_host) == "+OK\r\n"
    except OSError as e:
        if connect_host == "::1" and not isinstance(e, ssl.SSLError):
            pytest.skip(f"IPv6 loopback unavailable: {e}")
        raise


def test_default_ssl_context_rejects_other_name(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    ensure_pki(s)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(s, "not-us.example", "127.0.0.1")


def test_reissues_when_expiring_soon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amr.pki import local_ca

    s = _settings(tmp_path)
    monkeypatch.setattr(local_ca, "SERVER_VALIDITY", dt.timedelta(days=10))
    ensure_pki(s)
    short = _cert(s.server_cert_file)
    assert short.not_valid_after_utc - short.not_valid_before_utc < dt.timedelta(days=11)
    monkeypatch.undo()
    ensure_pki(s)
    renewed = _cert(s.server_cert_file)
    assert renewed.serial_number != short.serial_number
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc > dt.timedelta(days=300)
