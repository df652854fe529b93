"""The service commands a user runs: ``serve``, ``reload``, ``stop`` and ``pki rotate``."""

from __future__ import annotations

import socket
import ssl
import sys
import time
from collections.abc import Mapping

from amr.settings import Settings


def _wait_for_api(settings: Settings, timeout: float) -> bool:
    # A liveness check (the TLS handshake completes), whatever CA issued the certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    host = "localhost" if settings.api.host in ("127.0.0.1", "0.0.0.0", "::") else settings.api.host
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, settings.api.port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname=host):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def serve(settings: Settings, detach: bool, env: Mapping[str, str]) -> int:
    """Start the supervisor (which runs the API, the gateway, `amr ha` and every node) with ``env``
    as the environment of every process it starts."""
    from amr.home import ensure_home
    from amr.nodes.netns import private_network_supported
    from amr.nodes.supervisord import start_supervisord
    from amr.pki import ensure_pki

    ensure_home(settings)
    ensure_pki(settings)
    if settings.engine.private_network and (why := private_network_supported()):
        print(
            f"amr: cannot run the nodes in a private network on this machine ({why}; user namespaces may be "
            "disabled). Without it any local user can connect to the nodes' ports. To accept that risk, set "
            "engine.private_network = false in amr.toml (or AMR_ENGINE_PRIVATE_NETWORK=false).",
            file=sys.stderr,
        )
        return 1
    if not detach:
        print(
            f"amr: starting in the foreground (home {settings.home}, API {settings.api_url}); Ctrl-C stops it."
        )
        sys.stdout.flush()
        start_supervisord(settings, foreground=True, env=env)
        return 0
    start_supervisord(settings, foreground=False, env=env)
    if not _wait_for_api(settings, 30):
        print(
            f"amr: the supervisor started but the API did not answer at {settings.api_url}; "
            f"see {settings.logs_dir / 'api.log'}",
            file=sys.stderr,
        )
        return 1
    ca = settings.client_ca_file or "the system's trusted CAs"
    print(f"amr is running: API {settings.api_url}, home {settings.home}, CA {ca}")
    return 0


def reload(settings: Settings) -> int:
    """Restart the control plane, the HA coordinator and the metric collector so they read amr.toml again; with a new
    engine.server_binary the control plane then upgrades every database by a rolling restart. The
    gateway and the nodes keep running."""
    from amr.nodes.supervisord import restart_programs

    if not restart_programs(settings, ("api", "ha", "monitord")):
        print(f"amr is not running (home {settings.home})")
        return 1
    if not _wait_for_api(settings, 30):
        print(
            f"amr: the API did not answer after the reload; see {settings.logs_dir / 'api.log'}",
            file=sys.stderr,
        )
        return 1
    print("amr reloaded its settings: the API, the HA coordinator and the metric collector were restarted")
    return 0


def stop(settings: Settings) -> int:
    """Stop the supervisor and every process it runs."""
    from amr.nodes.supervisord import stop_supervisord

    if stop_supervisord(settings):
        print("amr stopped")
    else:
        print(f"amr is not running (home {settings.home})")
    return 0


def rotate_certificate(settings: Settings) -> int:
    """Issue a new server certificate; the API and the gateway serve it within a second."""
    from amr.pki import issue_server_certificate

    issue_server_certificate(settings)
    print(f"issued a new server certificate: {settings.server_cert_file} (signed by {settings.ca_cert_file})")
    return 0
