"""The control plane's object graph: the only place that picks concrete backends (the SQLite store,
the local node backend under the supervisor) and wires them into the reconciler and the API."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amr.home import read_identity, read_secret, write_private
from amr.logic.render.routes import render_route_table
from amr.model.routes import RouteTable
from amr.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from amr.reconciler.loop import Reconciler
    from amr.store.repository import SqlStore


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
    """A function writing the gateway's route table atomically to ``settings.routes_file``."""

    def write(table: RouteTable) -> None:
        write_private(settings.routes_file, render_route_table(table))

    return write


@dataclass(frozen=True)
class ControlPlane:
    """The wired control plane: the ASGI app serving the ARM API, the reconciler to run beside it,
    and the store to close when both stop."""

    app: FastAPI
    reconciler: Reconciler
    store: SqlStore


def build_control_plane(settings: Settings) -> ControlPlane:
    """Wire the control plane of ``settings.home``: store, node backend, reconciler, token service
    and API app."""
    from amr.api.app import create_app
    from amr.api.auth import Principal, TokenService
    from amr.api.context import Services, token_throttle_for
    from amr.logic.security.node_credentials import CredentialMasters
    from amr.nodes.local import LocalNodeBackend
    from amr.nodes.supervisor import SupervisorClient
    from amr.reconciler.ha_watch import ha_watch_writer, monitor_watch_writer
    from amr.reconciler.loop import Reconciler
    from amr.store.repository import SqlStore

    identity = read_identity(settings)
    # The control plane renders every internal user of every database: it holds every master.
    masters = CredentialMasters(
        admin=read_secret(settings, "admin.secret"),
        ha=read_secret(settings, "ha.secret"),
        gateway=read_secret(settings, "gateway.secret"),
        monitor=read_secret(settings, "monitor.secret"),
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
        write_monitor_watch=monitor_watch_writer(settings),
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
    return ControlPlane(create_app(services), reconciler, store)
