"""What every listener of one gateway process shares: settings, the audit log, brute-force state,
connection counts per database and descriptor-exhaustion state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amr.gateway.audit import AuditLog
from amr.gateway.client_directory import ClientDirectory
from amr.gateway.router_budget import RequestBudget
from amr.logic.dataplane.command_routing import KeySpec
from amr.logic.dataplane.descriptors import DescriptorPressure
from amr.logic.security.bruteforce import AuthFailureGuard
from amr.logic.security.node_credentials import CredentialMasters, database_uid_of_node
from amr.settings import GatewaySettings


@dataclass
class GatewayContext:
    """Per-process gateway state handed to each listener; ``clock`` is monotonic seconds.

    ``connections`` counts admitted connections per database across all its routes (an OSSCluster
    database has a database port and a port per node, sharing one limit); a route without a database
    id counts on its own, under ``":<port>"``."""

    settings: GatewaySettings
    audit: AuditLog
    guard: AuthFailureGuard
    clock: Callable[[], float] = field(default=time.monotonic)
    connections: dict[str, int] = field(default_factory=dict)
    descriptors: DescriptorPressure = field(default_factory=DescriptorPressure)
    # The master secret of the internal ``amr-gateway`` user ("" to ask without AUTH), to ask nodes
    # for their ROLE and slot map; its password on each database's nodes derives from it.
    node_password: str = ""
    # Key positions of every engine command (COMMAND INFO), read once by the first EnterpriseCluster
    # router (amr.logic.dataplane.command_routing); None until then.
    command_table: dict[bytes, KeySpec] | None = None
    # Incomplete EnterpriseCluster commands held whole by this process's routers (router_budget).
    request_budget: RequestBudget = field(default_factory=RequestBudget)
    # The tenant clients this process serves, for CLIENT LIST/INFO/KILL (this process alone unless
    # ``create`` says which worker it is); it asks the nodes with the password above.
    clients: ClientDirectory = field(init=False)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.clients = ClientDirectory(self.node_password_for_socket)

    def node_password_for_socket(self, socket: str) -> str:
        """The ``amr-gateway`` password on that node ("" without the gateway's master secret)."""
        return self.node_password_for(socket) if self.node_password else ""

    def node_password_for(self, socket: str) -> str:
        """The ``amr-gateway`` password on the nodes of the database ``socket`` belongs to."""
        return CredentialMasters(gateway=self.node_password).gateway_for(database_uid_of_node(socket))

    @classmethod
    def create(
        cls,
        settings: GatewaySettings,
        audit: AuditLog,
        node_password: str = "",
        guard: AuthFailureGuard | None = None,
        worker: int = 0,
        run_dir: Path | None = None,
    ) -> GatewayContext:
        """A context counting failed AUTHs in ``guard`` (the workers' shared table), or in a table
        of its own; worker ``worker`` of ``settings.workers``, asking the others about their
        clients through sockets in ``run_dir`` (None: this process alone)."""
        if guard is None:
            guard = AuthFailureGuard(
                settings.auth_failure_limit, settings.auth_failure_window, settings.auth_cooldown
            )
        ctx = cls(settings=settings, audit=audit, guard=guard, node_password=node_password)
        ctx.clients = ClientDirectory(
            ctx.node_password_for_socket, worker, settings.workers, run_dir, ctx.stats
        )
        return ctx

    def stats(self) -> dict[str, Any]:
        """This process's counters for `amr monitord`: when it started (its counters start from zero
        then), its open connections and its event totals per database."""
        return {"started": self.started, "connections": dict(self.connections), "totals": self.audit.totals}
