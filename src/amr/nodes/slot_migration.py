"""Live slot migration between two shard primaries, with the classic protocol (Valkey 8.1 has no
atomic slot migration):

1. the target: ``CLUSTER SETSLOT <slot> IMPORTING <source-id>``;
2. the source: ``CLUSTER SETSLOT <slot> MIGRATING <target-id>``: from now on the source serves the keys
   it still holds and answers ASK for the others, so new keys land on the target;
3. keys move with ``CLUSTER GETKEYSINSLOT`` + ``MIGRATE ... REPLACE AUTH2 ... KEYS k1 k2 ...`` until the
   slot is empty on the source (REPLACE: while the slot migrates the source's copy is the live one);
4. ``CLUSTER SETSLOT <slot> NODE <target-id>`` on the target (which bumps its config epoch), then the
   source, then every other primary.

Every step is idempotent, so a batch cut short (a crash, a node restart) is simply run again by the
next plan (amr.logic.topology.resharding). A batch handles many slots of one source/target pair with one
pipelined round trip per step, which is what makes it fast: per-slot round trips would dominate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from amr.errors import NodeError
from amr.nodes.backend import ValkeyAdmin

# Keys per MIGRATE: big enough to amortise the round trip, small enough that the source (which blocks
# while MIGRATE runs) answers its clients again within milliseconds for small values.
KEYS_PER_MIGRATE = 200
# Connections a batch's SETSLOTs are spread over. A primary with replicas answers each SETSLOT only
# once its replicas have acknowledged it (Valkey 8), so one connection would wait for one replica
# round trip per slot; many connections have their SETSLOTs acknowledged together.
SETSLOT_CONNECTIONS = 64
# MIGRATE's own I/O timeout towards the target, in milliseconds.
MIGRATE_TIMEOUT_MS = 30000
# MIGRATEs per pipeline, and pipelines of MIGRATEs in flight per source. MIGRATE blocks the source
# until the target has stored the keys, so MIGRATEs run one after another whatever is sent; a source
# handed hundreds at once (several batches' pipelines) ran them back to back and answered nobody
# else for over a second: its clients waited, and `amr ha` took it for dead and failed it over.
# A few short pipelines keep the source busy (the next is queued while one runs) and let it serve
# others between them: at most 32 MIGRATEs wait there, tens of milliseconds of work.
MIGRATES_PER_PIPELINE = 8
MIGRATE_STREAMS = 4


@dataclass(frozen=True)
class ShardPrimary:
    """The primary of one shard as migration needs it: an admin connection (answering bytes), its
    cluster node id and its internal address (MIGRATE connects there)."""

    shard: int
    admin: ValkeyAdmin
    node_id: str
    host: str
    port: int
    # The admin password of its database's nodes: a source authenticates to it with MIGRATE AUTH2.
    auth: str = field(default="", repr=False)


@dataclass(frozen=True)
class BatchResult:
    slots: int
    keys: int


class SlotMigrator:
    """Moves batches of slots from one shard primary to another (see the module docstring)."""

    def __init__(
        self,
        admin_user: str,
        keys_per_migrate: int = KEYS_PER_MIGRATE,
        timeout_ms: int = MIGRATE_TIMEOUT_MS,
    ) -> None:
        self._user = admin_user
        self._keys = keys_per_migrate
        self._timeout_ms = timeout_ms
        self._streams: dict[str, asyncio.Semaphore] = {}  # per source node id

    async def move_slots(
        self,
        source: ShardPrimary,
        target: ShardPrimary,
        others: Sequence[ShardPrimary],
        slots: Sequence[int],
    ) -> BatchResult:
        """Move ``slots`` (all owned by ``source``) with their keys to ``target``; ``others`` are the
        remaining primaries, told the new owner last. Raises NodeError on any failure (nothing is
        lost: a slot stays owned by the source until its keys are all on the target)."""
        if not slots:
            return BatchResult(0, 0)
        await _fan_out(target.admin, [("CLUSTER", "SETSLOT", s, "IMPORTING", source.node_id) for s in slots])
        await _fan_out(source.admin, [("CLUSTER", "SETSLOT", s, "MIGRATING", target.node_id) for s in slots])
        keys = await self._move_keys(source, target, slots)
        node = [("CLUSTER", "SETSLOT", s, "NODE", target.node_id) for s in slots]
        # The target first: once it owns the slot, the source's answer for it becomes MOVED.
        await _fan_out(target.admin, node)
        # Then the source and every other primary at once (each only speeds up what gossip of the
        # target's new config epoch would tell them anyway).
        await asyncio.gather(*(_fan_out(p.admin, node) for p in (source, *others)))
        return BatchResult(len(slots), keys)

    async def _move_keys(self, source: ShardPrimary, target: ShardPrimary, slots: Sequence[int]) -> int:
        moved = 0
        pending = list(slots)
        while pending:
            replies = await source.admin.pipeline(
                [("CLUSTER", "GETKEYSINSLOT", s, self._keys) for s in pending]
            )
            migrates = []
            still = []
            for slot, reply in zip(pending, replies, strict=True):
                keys = list(reply) if isinstance(reply, list) else []
                if not keys:
                    continue  # empty on the source: every key of the slot is on the target
                still.append(slot)
                moved += len(keys)
                migrates.append(
                    (
                        "MIGRATE",
                        target.host,
                        target.port,
                        "",
                        0,
                        self._timeout_ms,
                        "REPLACE",
                        "AUTH2",
                        self._user,
                        target.auth,
                        "KEYS",
                        *keys,
                    )  # fmt: skip
                )
            await self._migrate(source, target, migrates)
            # Loop until GETKEYSINSLOT finds nothing: a slot with more keys than one MIGRATE takes.
            pending = still
        return moved

    async def _migrate(
        self, source: ShardPrimary, target: ShardPrimary, migrates: Sequence[Sequence[str | int | bytes]]
    ) -> None:
        """Run ``migrates`` on the source, MIGRATES_PER_PIPELINE at a time, at most MIGRATE_STREAMS
        pipelines in flight per source (shared by every batch moving from it)."""
        streams = self._streams.setdefault(source.node_id, asyncio.Semaphore(MIGRATE_STREAMS))

        async def run(chunk: Sequence[Sequence[str | int | bytes]]) -> None:
            async with streams:
                replies = await source.admin.pipeline(chunk)
            for reply in replies:
                text = reply.decode() if isinstance(reply, bytes) else str(reply)
                if text not in ("OK", "NOKEY"):
                    raise NodeError(f"MIGRATE to shard {target.shard} answered {text!r}")

        step = MIGRATES_PER_PIPELINE
        # Every pipeline runs to its end before a failure is raised: none is left running on
        # connections the caller is about to close.
        outcomes = await asyncio.gather(
            *(run(migrates[i : i + step]) for i in range(0, len(migrates), step)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


async def _fan_out(admin: ValkeyAdmin, commands: Sequence[Sequence[str | int | bytes]]) -> None:
    """Run ``commands`` (independent of each other) as SETSLOT_CONNECTIONS pipelines in parallel."""
    size = max(1, -(-len(commands) // SETSLOT_CONNECTIONS))
    await asyncio.gather(*(admin.pipeline(commands[i : i + size]) for i in range(0, len(commands), size)))
