"""Composition root: the only module that picks concrete backends and wires them.

Commands handled here: ``serve`` (start the supervisor, which runs api, gateway, ha and nodes),
``stop``, ``pki rotate``, and ``api``, ``gateway`` and ``ha`` (the processes the supervisor runs).
Every other command is the HTTPS client in amr.cli.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

from amr.errors import AmrError
from amr.home import (
    check_binary_trusted,
    check_home_trusted,
    ensure_home,
    read_identity,
    read_secret,
    write_private,
)
from amr.logic.routes import render_route_table
from amr.model.routes import RouteTable
from amr.settings import Settings, default_home, load_settings

log = logging.getLogger("amr")


def port_checker(hosts: tuple[str, ...]) -> Callable[[int], bool]:
    """A function telling whether a TCP port can be bound on every one of ``hosts``."""

    def is_free(port: int) -> bool:
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError:
                    return False
        return True

    return is_free


def port_listening(port: int) -> bool:
    """Whether some socket on this host listens on TCP ``port`` (read from /proc, so the check opens
    no connection and leaves no trace in the gateway's audit log)."""
    wanted = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A" and (fields[1] + " ").endswith(wanted):
                        return True
        except OSError:
            continue
    return False


def routes_writer(settings: Settings) -> Callable[[RouteTable], None]:
    def write(table: RouteTable) -> None:
        write_private(settings.routes_file, render_route_table(table))

    return write


def _configure_logging(settings: Settings, name: str) -> None:
    logging.basicConfig(
        level=os.environ.get("AMR_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# --- amr api ---------------------------------------------------------------------------------------


def run_api(settings: Settings) -> None:
    """The control plane: ARM API over HTTPS plus the reconciler, in one process."""
    import uvicorn
    import uvloop

    from amr.api.app import create_app
    from amr.api.auth import Principal, TokenService
    from amr.api.context import Services, token_throttle_for
    from amr.api.limits import header_timeout_protocol
    from amr.gateway.tls import TlsContexts
    from amr.logic.node_credentials import CredentialMasters
    from amr.nodes.local import LocalNodeBackend
    from amr.nodes.supervisor import SupervisorClient
    from amr.reconciler.ha_watch import ha_watch_writer
    from amr.reconciler.loop import Reconciler
    from amr.store.repository import SqlStore

    _configure_logging(settings, "api")
    identity = read_identity(settings)
    # The control plane renders every internal user of every database: it holds every master.
    masters = CredentialMasters(
        admin=read_secret(settings, "admin.secret"),
        ha=read_secret(settings, "ha.secret"),
        gateway=read_secret(settings, "gateway.secret"),
    )
    store = SqlStore.open_file(settings.db_file)
    supervisor = SupervisorClient(str(settings.supervisor_dir / "supervisor.sock"))
    backend = LocalNodeBackend(settings, supervisor, masters)
    g = settings.gateway
    is_free = port_checker((*g.bind_hosts, settings.engine.internal_host))
    reconciler = Reconciler(
        settings,
        store,
        backend,
        masters,
        routes_writer(settings),
        is_free,
        port_is_listening=port_listening,
        write_ha_watch=ha_watch_writer(settings),
    )
    tokens = TokenService(
        read_secret(settings, "token.key").encode(),
        Principal(identity.tenant_id, identity.client_id, identity.client_secret),
        time.time,
    )
    services = Services(
        settings=settings,
        store=store,
        reconciler=reconciler,
        tokens=tokens,
        subscription_id=identity.subscription_id,
        tenant_id=identity.tenant_id,
        port_is_free=is_free,
        token_throttle=token_throttle_for(settings.api),
    )
    app = create_app(services)
    tls = TlsContexts()
    tls.set_files(str(settings.server_cert_file), str(settings.server_key_file))

    class ReloadingTlsConfig(uvicorn.Config):
        """uvicorn with our TLS context: TLS 1.2+, and a rotated certificate is served to new
        handshakes within a second without dropping open connections."""

        def load(self) -> None:
            super().load()
            self.ssl = tls.context_for("1.2")

    config = ReloadingTlsConfig(
        app,
        host=settings.api.host,
        port=settings.api.port,
        ssl_certfile=str(settings.server_cert_file),
        ssl_keyfile=str(settings.server_key_file),
        loop="none",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        http=header_timeout_protocol(settings.api.header_timeout),
    )
    server = uvicorn.Server(config)

    async def refresh_certificate() -> None:
        while True:
            await asyncio.sleep(1)
            tls.refresh()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(reconciler.run()), loop.create_task(refresh_certificate())]
        try:
            await server.serve()
        finally:
            for task in tasks:
                task.cancel()
            store.close()

    uvloop.run(main())


# --- amr ha ----------------------------------------------------------------------------------------


def run_ha(settings: Settings) -> None:
    """The failover coordinator of HA databases; it needs the watch file and its own master secret
    (ha.secret: it can derive the `amr-ha` passwords and no other), nothing from the control plane,
    so failovers happen while the API is down."""
    from amr.ha.main import run_ha as run_coordinator

    _configure_logging(settings, "ha")
    run_coordinator(settings, read_secret(settings, "ha.secret"))


# --- amr serve / stop ----------------------------------------------------------------------------


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


def serve(settings: Settings, detach: bool) -> int:
    from amr.nodes.netns import private_network_supported
    from amr.nodes.supervisor import start_supervisord
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
        start_supervisord(settings, foreground=True)
        return 0
    start_supervisord(settings, foreground=False)
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
    """Restart the control plane and the HA coordinator so they read amr.toml again; with a new
    engine.server_binary the control plane then upgrades every database by a rolling restart. The
    gateway and the nodes keep running."""
    from amr.nodes.supervisor import restart_programs

    if not restart_programs(settings, ("api", "ha")):
        print(f"amr is not running (home {settings.home})")
        return 1
    if not _wait_for_api(settings, 30):
        print(
            f"amr: the API did not answer after the reload; see {settings.logs_dir / 'api.log'}",
            file=sys.stderr,
        )
        return 1
    print("amr reloaded its settings: the API and the HA coordinator were restarted")
    return 0


def stop(settings: Settings) -> int:
    from amr.nodes.supervisor import stop_supervisord

    if stop_supervisord(settings):
        print("amr stopped")
    else:
        print(f"amr is not running (home {settings.home})")
    return 0


def rotate_certificate(settings: Settings) -> int:
    from amr.pki import issue_server_certificate

    issue_server_certificate(settings)
    print(f"issued a new server certificate: {settings.server_cert_file} (signed by {settings.ca_cert_file})")
    return 0


# --- entry -----------------------------------------------------------------------------------------

SERVICE_COMMANDS = ("serve", "stop", "reload", "api", "gateway", "ha", "pki")


def _worker_index(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def _service_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amr")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "start amr: the supervisor, the API, the gateway and every database"),
        ("stop", "stop amr and every process it runs"),
        ("reload", "restart the API and the HA coordinator so they read amr.toml again"),
        ("api", "run the control plane (started by the supervisor)"),
        ("gateway", "run the data-plane gateway (started by the supervisor)"),
        ("ha", "run the failover coordinator of clustered databases (started by the supervisor)"),
        ("pki", "manage the server certificate"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--home", help="AMR_HOME (default: $AMR_HOME or ~/.amr)")
        if name == "serve":
            p.add_argument("--api-port", type=int, help="HTTPS port of the management API (default 8443)")
            p.add_argument("--detach", action="store_true", help="run in the background and return")
        if name == "pki":
            p.add_argument(
                "action",
                choices=("rotate",),
                help="rotate: issue a new server certificate from the amr CA; the API and the gateway "
                "serve it to new connections within a second, open connections stay",
            )
    return parser


def run_service_command(argv: list[str]) -> int:
    args = _service_parser().parse_args(argv)
    home = Path(args.home).expanduser() if args.home else default_home(os.environ)
    if getattr(args, "api_port", None):
        # Children started by the supervisor inherit the environment, so they see the same port.
        os.environ["AMR_API_PORT"] = str(args.api_port)
    os.environ["AMR_HOME"] = str(home.absolute())
    try:
        # Before amr.toml is read: a home another user controls must not choose what amr runs.
        # `stop` only asks the supervisor to stop, and must work whatever became of the home.
        if args.command != "stop":
            check_home_trusted(home.expanduser().absolute())
        settings = load_settings(home)
        if args.command in ("serve", "reload", "api") and settings.engine.server_binary:
            check_binary_trusted(Path(settings.engine.server_binary).expanduser())
        if args.command == "serve":
            return serve(settings, args.detach)
        if args.command == "stop":
            return stop(settings)
        if args.command == "reload":
            return reload(settings)
        if args.command == "api":
            run_api(settings)
            return 0
        if args.command == "pki":
            return rotate_certificate(settings)
        if args.command == "ha":
            run_ha(settings)
            return 0
        from amr.gateway.main import run_gateway
        from amr.logic.supervisor_conf import GATEWAY_WORKER_ENV, gateway_program_name

        # The supervisor runs gateway.workers copies of this command; each but the first has its index.
        worker = _worker_index(os.environ.get(GATEWAY_WORKER_ENV, ""))
        _configure_logging(settings, gateway_program_name(worker))
        run_gateway(settings, worker)
        return 0
    except AmrError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVICE_COMMANDS:
        return run_service_command(argv)
    if argv in ([], ["-h"], ["--help"]):
        print(
            "Service commands:\n"
            "  amr serve [--home DIR] [--api-port N] [--detach]   start amr (supervisor, API, gateway, databases)\n"
            "  amr stop [--home DIR]                              stop amr and every database process\n"
            "  amr pki rotate [--home DIR]                        issue a new server certificate (no downtime)\n"
        )
    from amr.cli.main import main as cli_main

    return cli_main(argv)
