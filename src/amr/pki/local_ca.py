"""A local certificate authority under AMR_HOME/pki and the server certificate it signs.

Clients trust ``ca.pem`` directly, so ``server.pem`` holds only the leaf certificate. Keys are
written with mode 0600 from the moment the file exists (temp file + ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from amr.errors import ConfigError
from amr.files import write_atomic
from amr.settings import Settings

log = logging.getLogger(__name__)

CA_COMMON_NAME = "amr local CA"
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
KEY_SIZE = 2048


def _own_cert_file(settings: Settings) -> Path:
    # The certificate this CA issues; a user-supplied one (tls.cert_file) is never written to.
    return settings.pki_dir / "server.pem"


def _own_key_file(settings: Settings) -> Path:
    return settings.pki_dir / "server.key"


def ensure_pki(settings: Settings) -> None:
    """Create the CA and server certificate if missing; re-issue the server certificate if it no longer
    names the public host or expires within 30 days. Idempotent."""
    pki_dir = settings.pki_dir
    try:
        _ensure_dir(pki_dir)
        if settings.user_supplied_certificate:
            # The local CA still exists (clients of amr's own certificate keep trusting it), but the
            # certificate served is the user's.
            if not settings.ca_cert_file.exists() or not _ca_key_file(settings).exists():
                _create_ca(settings)
            _check_user_certificate(settings)
            return
        if not settings.ca_cert_file.exists() or not _ca_key_file(settings).exists():
            _create_ca(settings)
            issue_server_certificate(settings)
            return
        reason = _server_cert_problem(settings)
        if reason:
            log.info("issuing server certificate: %s", reason)
            issue_server_certificate(settings)
    except OSError as e:
        raise ConfigError(f"cannot write PKI files in {pki_dir}: {e}") from e


def _check_user_certificate(settings: Settings) -> None:
    """A user-supplied certificate must load with its key; amr never rewrites it."""
    if not settings.tls.key_file:
        raise ConfigError("tls.cert_file is set but tls.key_file is not: set both, or neither.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot use the certificate {settings.tls.cert_file} with key {settings.tls.key_file}: {e}"
        ) from e


def issue_server_certificate(settings: Settings) -> None:
    """Issue a fresh server key and certificate signed by the existing local CA."""
    if settings.user_supplied_certificate:
        raise ConfigError(
            f"the server certificate is user-supplied ({settings.tls.cert_file}); replace that file to "
            "rotate it (amr picks the new one up), or unset tls.cert_file to let amr issue its own."
        )
    try:
        ca_cert = x509.load_pem_x509_certificate(settings.ca_cert_file.read_bytes())
        ca_key = serialization.load_pem_private_key(_ca_key_file(settings).read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load the local CA from {settings.pki_dir}: {e}") from e
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ConfigError(f"{_ca_key_file(settings)} is not an RSA key")
    now = _now()
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    public_host = settings.gateway.public_host
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, public_host or "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_server_sans(public_host)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _ensure_dir(settings.pki_dir)
    # Key first: a reader that sees the new certificate must find its key already in place.
    write_atomic(_own_key_file(settings), _key_pem(key), mode=0o600)
    write_atomic(_own_cert_file(settings), cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("issued server certificate for %s, valid until %s", public_host, cert.not_valid_after_utc)


def server_certificate_sans(cert_file: Path) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses (as strings) a certificate file names."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = list(san.get_values_for_type(x509.DNSName))
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def _ca_key_file(settings: Settings) -> Path:
    return settings.pki_dir / "ca.key"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _create_ca(settings: Settings) -> None:
    now = _now()
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_atomic(_ca_key_file(settings), _key_pem(key), mode=0o600)
    write_atomic(settings.ca_cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("created local CA in %s", settings.pki_dir)


def _server_sans(public_host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    extra = _host_general_name(public_host)
    if extra is not None and extra not in names:
        names.append(extra)
    return names


def _host_general_name(host: str) -> x509.GeneralName | None:
    host = host.strip().strip("[]")
    if not host:
        return None
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host.lower())


def _server_cert_problem(settings: Settings) -> str | None:
    """Why the server certificate must be (re-)issued, or None if it is fine."""
    if not _own_cert_file(settings).exists() or not _own_key_file(settings).exists():
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(_own_cert_file(settings).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound) as e:
        return f"unreadable ({e})"
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return "expires within 30 days"
    wanted = _host_general_name(settings.gateway.public_host)
    if wanted is not None and wanted not in list(san):
        return f"does not name {settings.gateway.public_host}"
    try:
        ca_cert = x509.load_pem_x509_certificate(settings.ca_cert_file.read_bytes())
        if cert.issuer != ca_cert.subject:
            return "not issued by the local CA"
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError) as e:
        return f"not signed by the local CA ({e})"
    except Exception as e:  # cryptography raises InvalidSignature, not a ValueError
        return f"not signed by the local CA ({type(e).__name__})"
    return None


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
