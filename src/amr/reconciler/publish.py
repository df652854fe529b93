"""Publishing what the data plane follows: the gateway's route table, the HA watch, the metric
collector's watch and the alert rules, planned from the store's records and written only when they changed."""

from __future__ import annotations

from collections.abc import Callable

from amr.logic.render.routes import plan_route_table
from amr.model.ha import HaWatch
from amr.model.resources import Cluster, Database, FirewallRule
from amr.model.routes import RouteTable
from amr.reconciler.alert_rules import AlertRulesPublisher, alert_rules_file
from amr.reconciler.ha_watch import HaWatchPublisher
from amr.settings import Settings
from amr.store.repository import Store


class DataPlanePublisher:
    """Writes the route table and the HA watch; holds the databases whose failover is paused (they
    leave the HA watch while a conversion or a delete stops their nodes on purpose)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        write_routes: Callable[[RouteTable], None],
        write_ha_watch: Callable[[HaWatch], None] | None,
        write_monitor_watch: Callable[[HaWatch], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._write_routes = write_routes
        self._ha_watch = HaWatchPublisher(write_ha_watch)
        self._monitor_watch = HaWatchPublisher(write_monitor_watch, every_database=True)
        # Alert rules go where the metric collector's watch goes (monitord reads both).
        self._alert_rules = (
            AlertRulesPublisher(store, alert_rules_file(settings))
            if write_monitor_watch is not None
            else None
        )
        self._last_routes: RouteTable | None = None
        self._failover_paused: set[str] = set()  # by database uid

    def pause_failover(self, uid: str) -> None:
        """Take a database out of the HA watch (published at once)."""
        self._failover_paused.add(uid)
        self.publish()

    def resume_failover(self, uid: str) -> None:
        """Put a database back into the HA watch, if it was out (published at once)."""
        if uid in self._failover_paused:
            self._failover_paused.discard(uid)
            self.publish()

    def forget(self, uid: str) -> None:
        """A deleted database: nothing to resume."""
        self._failover_paused.discard(uid)

    def publish(self) -> None:
        """Write the route table and the HA watch as the store says now, each if it changed."""
        clusters = {c.key: c for c in self._store.list(Cluster)}
        rules: dict[str, list[tuple[str, str]]] = {}
        for rule in self._store.list(FirewallRule):
            rules.setdefault(rule.cluster_key, []).append((rule.start_ip, rule.end_ip))
        s = self._settings
        table = plan_route_table(
            self._store.list(Database),
            clusters,
            str(s.run_dir),
            str(s.server_cert_file),
            str(s.server_key_file),
            rules,
            s.gateway.private_network_list,
            s.gateway.max_connections_per_database,
        )
        if table != self._last_routes:
            self._write_routes(table)
            self._last_routes = table
        databases = self._store.list(Database)
        self._ha_watch.publish(databases, clusters, str(s.run_dir), frozenset(self._failover_paused))
        self._monitor_watch.publish(databases, clusters, str(s.run_dir))
        if self._alert_rules is not None:
            self._alert_rules.publish()
