"""Server TLS contexts for the gateway's listeners, with certificate reload.

A listener keeps the context it was started with; that context's SNI callback (which OpenSSL calls on
every ClientHello, with or without a server name) switches the handshake to the newest context. So a
reloaded certificate applies to new handshakes at once, and open connections are untouched.
"""

from __future__ import annotations

import logging
import os
import ssl

from amr.errors import GatewayError

log = logging.getLogger(__name__)

# TLS 1.2 suites: forward secret AEAD only. TLS 1.3 suites are OpenSSL's defaults (all AEAD).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def tls_floor(min_tls_version: str) -> ssl.TLSVersion:
    """The lowest protocol version a route accepts: Azure's "1.0"/"1.1"/"1.2" all mean TLS 1.2."""
    return ssl.TLSVersion.TLSv1_3 if min_tls_version.strip() == "1.3" else ssl.TLSVersion.TLSv1_2


def build_server_context(cert_file: str, key_file: str, floor: ssl.TLSVersion) -> ssl.SSLContext:
    """A server context with the certificate loaded; raise GatewayError if it cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = floor
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise GatewayError(f"cannot load certificate {cert_file} with key {key_file}: {e}") from e
    return ctx


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TlsContexts:
    """The current server contexts (one per TLS floor) for one certificate and key."""

    def __init__(self) -> None:
        self._cert_file = ""
        self._key_file = ""
        self._stamp: tuple[object, object] | None = None
        self._current: dict[ssl.TLSVersion, ssl.SSLContext] = {}
        self._failed_stamp: tuple[object, object] | None = None

    def set_files(self, cert_file: str, key_file: str) -> None:
        """Use these files from now on (reloaded on the next ``refresh``)."""
        if (cert_file, key_file) != (self._cert_file, self._key_file):
            self._cert_file, self._key_file = cert_file, key_file
            self._stamp = None
            self._failed_stamp = None

    def refresh(self) -> None:
        """Reload the certificate if its files changed since the last load. A failed reload is logged
        once and the previous certificate stays in use."""
        if not self._cert_file:
            return
        stamp = (_file_stamp(self._cert_file), _file_stamp(self._key_file))
        if stamp == self._stamp or stamp == self._failed_stamp:
            return
        try:
            floors = list(self._current) or [ssl.TLSVersion.TLSv1_2]
            fresh = {floor: self._build(floor) for floor in floors}
        except GatewayError as e:
            self._failed_stamp = stamp
            log.error("%s; keeping the previous certificate", e)
            return
        if self._stamp is not None:
            log.info("reloaded certificate %s", self._cert_file)
        self._stamp = stamp
        self._failed_stamp = None
        self._current.update(fresh)

    def context_for(self, min_tls_version: str) -> ssl.SSLContext:
        """The context to start a listener with; raise GatewayError if no certificate is loadable."""
        floor = tls_floor(min_tls_version)
        self.refresh()
        if floor not in self._current:
            if not self._cert_file:
                raise GatewayError("the routes file names no certificate")
            self._current[floor] = self._build(floor)
        return self._current[floor]

    def _build(self, floor: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = build_server_context(self._cert_file, self._key_file, floor)

        def switch_to_current(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            latest = self._current.get(floor)
            if latest is not None and latest is not sslobj.context:
                sslobj.context = latest

        ctx.sni_callback = switch_to_current
        return ctx
