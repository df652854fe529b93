"""Carrying a cache change (SKU, high availability) into its database, including scaling a clustered
database to another shard count with live slot migration.

While the cache is Updating the reconciler calls ``Scaler.propagate`` every tick until it answers
False. A scale-out first adds the new shards' nodes to the database record (the database converges:
they start, meet the cluster and get their replicas), then migrates slots to them; a scale-in first
migrates the leaving shards' slots away, then drops their nodes from the record, removes them and has
every remaining node forget them. The migration runs in a task of its own, so a reconcile tick is
never held up; each of its rounds observes the shard primaries, plans (amr.logic.resharding) and acts,
so a control plane restarted halfway just carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from amr.errors import AmrError, NodeError
from amr.logic.node_credentials import ADMIN_USER
from amr.logic.placement import (
    choose_node_ports,
    count_new_nodes,
    plan_nodes,
    plan_shard_count,
    plan_used_ports,
    render_shard_note,
)
from amr.logic.plan import NodeTarget
from amr.logic.resharding import (
    SlotMove,
    choose_slot_owners,
    parse_cluster_nodes,
    parse_myself,
    plan_forget,
    plan_move_batches,
    plan_slot_moves,
    plan_stale_slot_states,
)
from amr.logic.valkey_conf import render_moving_slots_settings
from amr.model.enums import ProvisioningState, ResourceState, Toggle
from amr.model.node import Role
from amr.model.resources import Cluster, Database
from amr.model.sku import sku_by_name
from amr.nodes.backend import NodeBackend
from amr.nodes.slot_migration import ShardPrimary, SlotMigrator
from amr.reconciler.converge import NodeConverger
from amr.reconciler.ledger import Ledger
from amr.reconciler.migrating import MigratingDatabases
from amr.settings import Settings
from amr.store.repository import Store

log = logging.getLogger(__name__)

# Slots per pipelined batch, and batches in flight per source/target pair.
BATCH_SLOTS = 512
LANES = 2
# How long a finished migration waits for every node to agree on the new layout.
AGREE_TIMEOUT = 30.0


class Scaler:
    """Carries cache changes into databases; owns the slot migration tasks (one per database), and
    marks the databases they migrate in ``migrating``. Converges databases through ``nodes``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: NodeBackend,
        ledger: Ledger,
        admin_password_for: Callable[[str], str],
        lock: Callable[[str], asyncio.Lock],
        nodes: NodeConverger,
        migrating: MigratingDatabases,
        port_is_free: Callable[[int], bool],
        notify: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._ledger = ledger
        self._lock = lock
        self._converge = nodes.converge
        self._current_targets = nodes.current_targets
        self._port_is_free = port_is_free
        self._notify = notify
        self._admin_password_for = admin_password_for  # by database uid
        self._migrator = SlotMigrator(ADMIN_USER)
        self._tasks: dict[str, asyncio.Task[str]] = {}
        self._migrating = migrating
        self.moved_keys = 0  # keys moved since start (for logs and benchmarks)

    def wanted_shards(self, db: Database, cluster: Cluster) -> int:
        """The shard count the cache's SKU asks for (capped by the installation's setting)."""
        sku = sku_by_name(cluster.sku_name)
        if sku is None:
            return db.shard_count
        return plan_shard_count(sku, self._settings.engine.max_shards_per_database, db.clustering_policy)

    async def propagate(self, cluster: Cluster, db: Database) -> bool:
        """Carry a cluster change into its database; True while the database still has work."""
        if db.provisioning_state is ProvisioningState.DELETING or db.provisioning_state.busy:
            return True
        ha = cluster.high_availability is Toggle.ENABLED
        shards = max(db.shard_count, self.wanted_shards(db, cluster))
        if count_new_nodes(shards, ha, db.nodes):
            return self._add_nodes(db, shards, ha)
        if db.clustering_policy.cluster_mode and not self._migration_done(db, cluster):
            return True
        # SKU (memory) changes apply live: converge the database against the new cluster now, so the
        # cluster's operation completes only once its nodes run with the new settings.
        try:
            async with self._lock(db.key):
                await self._converge(db, cluster)
        except AmrError as e:
            log.warning("applying cache change to %s failed, retrying: %s", db.id, e)
            return True
        return not self._note_shards(db, cluster)

    async def settle_shards(self, cluster: Cluster, db: Database) -> bool:
        """For a clustered database's own update (a NoCluster database just converted runs one
        shard): bring it to the SKU's shard count as a SKU change would (new shards join, then slots
        migrate to them), and record the shard note; True while work remains. Called with the
        database's lock held; the migration runs in its own task, which takes the lock per round."""
        ha = cluster.high_availability is Toggle.ENABLED
        shards = max(db.shard_count, self.wanted_shards(db, cluster))
        if count_new_nodes(shards, ha, db.nodes):
            return self._add_nodes(db, shards, ha)
        if db.key in self._tasks or await self._has_empty_primary(db, cluster):
            if not self._migration_done(db, cluster):
                return True
        return not self._note_shards(db, cluster)

    async def _has_empty_primary(self, db: Database, cluster: Cluster) -> bool:
        """Whether a shard primary owns no slot (a shard added for the SKU that has not got its slots by
        migration yet: a control plane restarted mid-way finds the migration to do from this)."""
        if db.shard_count < 2:
            return False
        for t in await self._current_targets(db, cluster):
            if t.spec.role is not Role.PRIMARY:
                continue
            admin = self._backend.admin(t.spec)
            try:
                view = parse_myself(_text(await admin.execute("CLUSTER", "NODES")))
            finally:
                await admin.close()
            if view is None or not view.slots:
                return True
        return False

    def _note_shards(self, db: Database, cluster: Cluster) -> bool:
        """Record the SKU's shard count and the status message about it; False if the record changed
        meanwhile (the next tick tries again)."""
        sku = sku_by_name(cluster.sku_name)
        current = self._store.get(Database, db.key)
        if sku is None or current is None:
            return True
        note = render_shard_note(sku, current.shard_count, current.clustering_policy)
        if (current.shards_for_sku, current.status_message) == (sku.shards, note):
            return True
        return self._ledger.replace(
            current, dataclasses.replace(current, shards_for_sku=sku.shards, status_message=note)
        )

    def _add_nodes(self, db: Database, shards: int, ha: bool) -> bool:
        """New shards (a scale-out) or replicas (HA enabled) join the record; the database converges
        them (start, meet, replicate) before any slot moves."""
        wanted = count_new_nodes(shards, ha, db.nodes)
        dbs = self._store.list(Database)
        used = plan_used_ports(dbs)
        g = self._settings.gateway
        ports = choose_node_ports(
            wanted, (g.node_port_range_start, g.node_port_range_end), used, self._port_is_free
        )
        updated = dataclasses.replace(
            db,
            nodes=plan_nodes(db.uid, shards, ha, db.nodes, ports),
            provisioning_state=ProvisioningState.UPDATING,
            resource_state=ResourceState.UPDATING,
        )
        self._ledger.replace(db, updated)
        return True

    def _migration_done(self, db: Database, cluster: Cluster) -> bool:
        """Start (or restart after a failure) the database's migration task; True once one ran to
        its end (nothing left to move, remove or forget)."""
        task = self._tasks.get(db.key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._reshard(db.key, cluster.key))
            task.add_done_callback(self._task_finished)
            self._tasks[db.key] = task
            return False
        if not task.done():
            return False
        del self._tasks[db.key]
        if task.cancelled():
            return False
        error = task.exception()
        if error is not None:
            log.warning("resharding %s failed, retrying: %s", db.id, error)
            return False
        log.info("resharding %s: %s", db.id, task.result())
        return True

    def _task_finished(self, task: asyncio.Task[str]) -> None:
        # Look at the outcome here too, so a task nobody polls any more (its cache deleted, the
        # reconciler replaced) never ends as "exception was never retrieved"; the next tick decides.
        if not task.cancelled():
            task.exception()
        self._notify()

    async def _reshard(self, db_key: str, cluster_key: str) -> str:
        self._migrating.begin(db_key)
        try:
            started, moved, rounds = time.monotonic(), 0, 0
            while True:
                db = self._store.get(Database, db_key)
                cluster = self._store.get(Cluster, cluster_key)
                if db is None or cluster is None:
                    return "database gone"
                async with self._lock(db.key):
                    count = await self._reshard_round(db, cluster)
                if count is None:
                    return f"done after {rounds} rounds: {moved} slots in {time.monotonic() - started:.1f} s"
                moved += count
                rounds += 1
        finally:
            self._migrating.end(db_key)

    async def _reshard_round(self, db: Database, cluster: Cluster) -> int | None:
        """One observe-plan-act round; the number of slots moved, or None when there is nothing left."""
        wanted = self.wanted_shards(db, cluster)
        targets = await self._current_targets(db, cluster)
        async with AsyncExitStack() as stack:
            primaries: dict[int, ShardPrimary] = {}
            views = {}
            for t in targets:
                if t.spec.role is not Role.PRIMARY:
                    continue
                admin = self._backend.admin(t.spec, decode=False)
                stack.push_async_callback(admin.close)
                view = parse_myself(_text(await admin.execute("CLUSTER", "NODES")))
                if view is None:
                    raise NodeError(f"node {t.spec.name} shows no cluster view")
                views[t.spec.shard] = view
                primaries[t.spec.shard] = ShardPrimary(
                    t.spec.shard, admin, view.node_id, t.spec.internal_host, t.spec.port,
                    self._admin_password_for(t.spec.database_uid),
                )  # fmt: skip
            moves = plan_slot_moves(choose_slot_owners(views), [s for s in views if s < wanted])
            for shard, slot in plan_stale_slot_states(views, moves):
                await primaries[shard].admin.execute("CLUSTER", "SETSLOT", slot, "STABLE")
            if moves:
                await self._apply_moving_slots_settings(targets, primaries)
                await self._move(moves, primaries)
                return len(moves)
        if db.shard_count > wanted:
            await self._drop_leaving_shards(db, wanted)
            return 0
        await self._forget_and_agree(db, cluster)
        return None

    async def _apply_moving_slots_settings(
        self, targets: tuple[NodeTarget, ...], primaries: dict[int, ShardPrimary]
    ) -> None:
        """Set what every node's rendered config says while the database reshards
        (``render_moving_slots_settings``) now: the reconciler converges settings only between
        migration rounds, and sets them back once the migration is over."""
        for t in targets:
            primary = primaries.get(t.spec.shard) if t.spec.role is Role.PRIMARY else None
            admin = primary.admin if primary is not None else self._backend.admin(t.spec)
            try:
                for name, value in render_moving_slots_settings(True):
                    await admin.execute("CONFIG", "SET", name, value)
            finally:
                if primary is None:
                    await admin.close()

    async def _move(self, moves: list[SlotMove], primaries: dict[int, ShardPrimary]) -> None:
        """Carry out the moves: source/target pairs in parallel, LANES batches at a time per pair."""
        pairs: dict[tuple[int, int], list[list[SlotMove]]] = {}
        for batch in plan_move_batches(moves, BATCH_SLOTS):
            pairs.setdefault((batch[0].source, batch[0].target), []).append(batch)

        failed = asyncio.Event()

        async def lane(batches: list[list[SlotMove]]) -> None:
            for batch in batches:
                if failed.is_set():
                    return  # another lane failed: this round replans, start nothing more
                source, target = primaries[batch[0].source], primaries[batch[0].target]
                others = [p for s, p in primaries.items() if s not in (source.shard, target.shard)]
                try:
                    result = await self._migrator.move_slots(source, target, others, [m.slot for m in batch])
                except BaseException:
                    failed.set()
                    raise
                self.moved_keys += result.keys

        # The engine pool hands each concurrent pipeline a connection of its own.
        lanes = [
            part
            for _, batches in sorted(pairs.items())
            for index in range(LANES)
            if (part := batches[index::LANES])
        ]
        # Every lane ends before a failure is raised: a lane left running would go on moving slots
        # (and logging each one, the settings being back to normal) after this round gave up.
        outcomes = await asyncio.gather(*(lane(part) for part in lanes), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _drop_leaving_shards(self, db: Database, wanted: int) -> None:
        """The leaving shards own no slot any more: drop their nodes from the record first (so a crash
        from here on leaves strays the stray sweep removes), then stop and remove them."""
        leaving = [n for n in db.nodes if n.shard >= wanted]
        kept = tuple(n for n in db.nodes if n.shard < wanted)
        if not self._ledger.replace(db, dataclasses.replace(db, nodes=kept)):
            raise NodeError(f"database {db.id} changed while it scaled in; replanning")
        for node in leaving:
            await self._backend.remove_node(node.name, f"{self._settings.nodes_dir}/{db.uid}/{node.name}")
        log.info("scaled in %s: removed %s", db.id, ", ".join(n.name for n in leaving))

    async def _forget_and_agree(self, db: Database, cluster: Cluster) -> None:
        """Every node forgets nodes the database no longer has, and every node sees every slot where
        the primaries say it is (gossip carries the last SETSLOTs to the replicas)."""
        deadline = time.monotonic() + AGREE_TIMEOUT
        while True:
            views = {}
            specs = {t.spec.name: t.spec for t in await self._current_targets(db, cluster)}
            for spec in specs.values():
                admin = self._backend.admin(spec)
                try:
                    views[spec.name] = parse_cluster_nodes(_text(await admin.execute("CLUSTER", "NODES")))
                finally:
                    await admin.close()
            own = {name: next((line for line in lines if line.myself), None) for name, lines in views.items()}
            if any(line is None for line in own.values()):
                raise NodeError("a node of the database shows no cluster view")
            keep = [line.node_id for line in own.values() if line is not None]
            forget = plan_forget(
                {name: [line.node_id for line in lines] for name, lines in views.items()}, keep
            )
            for name, node_id in forget:
                admin = self._backend.admin(specs[name])
                try:
                    await admin.execute("CLUSTER", "FORGET", node_id)
                except NodeError as e:
                    log.info("CLUSTER FORGET %s on %s: %s", node_id, name, e)
                finally:
                    await admin.close()
            layouts = {
                frozenset((s, line.node_id) for line in lines for s in line.slots) for lines in views.values()
            }
            if not forget and len(layouts) == 1:
                return
            if time.monotonic() > deadline:
                raise NodeError("the nodes do not agree on the slot layout yet")
            await asyncio.sleep(0.1)


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)
