"""Settling resource groups and caches (clusters): deletes cascade down to databases, creates
complete at once, and an update completes once every database of the cache carries it (see
``Scaler.propagate``)."""

from __future__ import annotations

from amr.logic.operations.lifecycle import plan_deleting, plan_running
from amr.logic.outcomes import Outcome, info
from amr.model.alerts import ActionGroup, MetricAlert
from amr.model.enums import ProvisioningState
from amr.model.resources import Cluster, Database, FirewallRule, ResourceGroup
from amr.reconciler.ledger import Ledger
from amr.reconciler.scaling import Scaler
from amr.store.repository import Store


class CacheSettler:
    """One pass over the resource groups and caches that have work pending."""

    def __init__(self, store: Store, ledger: Ledger, scaler: Scaler) -> None:
        self._store = store
        self._ledger = ledger
        self._scaler = scaler

    async def settle(self) -> list[Outcome]:
        """Settle groups, then caches; one outcome per group or cache whose operation completed."""
        return self._settle_groups() + await self._settle_clusters()

    def _settle_groups(self) -> list[Outcome]:
        outcomes = []
        for group in self._store.list(ResourceGroup):
            if group.provisioning_state is not ProvisioningState.DELETING:
                continue
            clusters = self._store.list(Cluster, group.key + "/")
            for cluster in clusters:
                if cluster.provisioning_state is not ProvisioningState.DELETING:
                    self._ledger.replace(cluster, plan_deleting(cluster))
            if not clusters:
                # Alert rules first: an action group is deleted only once no rule uses it.
                for rule in self._store.list(MetricAlert, group.key + "/"):
                    self._store.delete(rule)
                for action_group in self._store.list(ActionGroup, group.key + "/"):
                    self._store.delete(action_group)
            if not clusters and self._ledger.delete(group):
                self._ledger.complete(group.id, ("delete",))
                outcomes.append(info(f"deleted resource group {group.id}"))
        return outcomes

    async def _settle_clusters(self) -> list[Outcome]:
        outcomes = []
        for cluster in self._store.list(Cluster):
            state = cluster.provisioning_state
            dbs = self._store.list(Database, cluster.key + "/")
            if state is ProvisioningState.CREATING:
                if self._finish(cluster, "create"):
                    outcomes.append(info(f"created cache {cluster.id}"))
            elif state is ProvisioningState.DELETING:
                for db in dbs:
                    if db.provisioning_state is not ProvisioningState.DELETING:
                        self._ledger.replace(db, plan_deleting(db))
                if not dbs and self._ledger.delete(cluster):
                    for rule in self._store.list(FirewallRule, cluster.key + "/firewallrules/"):
                        self._store.delete(rule)
                    self._ledger.complete(cluster.id, ("delete",))
                    outcomes.append(info(f"deleted cache {cluster.id}"))
            elif state is ProvisioningState.UPDATING:
                pending = False
                for db in dbs:
                    # True while the database still has work to carry the change.
                    pending |= await self._scaler.propagate(cluster, db)
                if not pending and self._finish(cluster, "update"):
                    outcomes.append(info(f"updated cache {cluster.id}"))
        return outcomes

    def _finish(self, cluster: Cluster, action: str) -> bool:
        if not self._ledger.replace(cluster, plan_running(cluster)):
            return False
        self._ledger.complete(cluster.id, (action,))
        return True
