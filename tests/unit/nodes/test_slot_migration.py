"""SlotMigrator against a recording admin: the classic protocol's steps in order, keys moved in
batches until the slot is empty, and an engine refusal of MIGRATE raised as NodeError."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from amr.errors import NodeError
from amr.nodes.slot_migration import MIGRATE_STREAMS, MIGRATES_PER_PIPELINE, ShardPrimary, SlotMigrator


class RecordingAdmin:
    """Answers like a primary: GETKEYSINSLOT gives out the keys left in a slot; MIGRATE removes them."""

    def __init__(
        self, name: str, log: list[tuple[str, ...]], keys: dict[int, list[bytes]] | None = None
    ) -> None:
        self.name, self.log, self.keys = name, log, keys or {}
        self.migrate_reply: object = b"OK"
        self.migrating = 0  # MIGRATE pipelines in flight now, and the most there ever were
        self.most_migrating = 0
        self.longest_migrate_pipeline = 0

    async def execute(self, *args: str | int | bytes) -> object:
        return (await self.pipeline([args]))[0]

    async def pipeline(self, commands: Sequence[Sequence[str | int | bytes]]) -> list[object]:
        migrates = sum(1 for c in commands if c[0] == "MIGRATE")
        if migrates:
            self.longest_migrate_pipeline = max(self.longest_migrate_pipeline, migrates)
            self.migrating += 1
            self.most_migrating = max(self.most_migrating, self.migrating)
            await asyncio.sleep(0.001)  # the engine working: other pipelines may be sent meanwhile
            self.migrating -= 1
        replies: list[object] = []
        for command in commands:
            words = tuple(str(w) for w in command[:4])
            self.log.append((self.name, *words))
            if words[:2] == ("CLUSTER", "GETKEYSINSLOT"):
                slot, count = int(command[2]), int(command[3])
                replies.append(self.keys.get(slot, [])[:count])
            elif words[0] == "MIGRATE":
                moved = set(command[command.index("KEYS") + 1 :])
                for slot in self.keys:
                    self.keys[slot] = [k for k in self.keys[slot] if k not in moved]
                replies.append(self.migrate_reply)
            else:
                replies.append(b"OK")
        return replies

    async def close(self) -> None:
        return None


def _primaries(log: list[tuple[str, ...]], keys: dict[int, list[bytes]]) -> tuple[ShardPrimary, ...]:
    return (
        ShardPrimary(0, RecordingAdmin("src", log, keys), "id-src", "127.0.0.2", 7000),
        ShardPrimary(1, RecordingAdmin("dst", log), "id-dst", "127.0.0.2", 7001, "pw"),
        ShardPrimary(2, RecordingAdmin("other", log), "id-other", "127.0.0.2", 7002),
    )


def test_a_batch_follows_the_protocol_and_empties_every_slot() -> None:
    log: list[tuple[str, ...]] = []
    keys = {5: [f"a{i}".encode() for i in range(5)], 6: [b"b"]}
    source, target, other = _primaries(log, keys)
    result = asyncio.run(
        SlotMigrator("amr-admin", keys_per_migrate=2).move_slots(source, target, [other], [5, 6, 7])
    )
    assert result.slots == 3 and result.keys == 6
    assert keys == {5: [], 6: []}
    steps = [
        (name, words[0] if words[0] == "MIGRATE" else " ".join(words[1:2] + words[3:4]))
        for name, *words in log
    ]
    first = {step: steps.index(step) for step in reversed(steps)}
    # IMPORTING on the target before MIGRATING on the source, keys before ownership, target owner first.
    assert (
        first[("dst", "SETSLOT IMPORTING")] < first[("src", "SETSLOT MIGRATING")] < first[("src", "MIGRATE")]
    )
    last_migrate = max(i for i, s in enumerate(steps) if s == ("src", "MIGRATE"))
    assert last_migrate < first[("dst", "SETSLOT NODE")] < first[("src", "SETSLOT NODE")]
    assert first[("dst", "SETSLOT NODE")] < first[("other", "SETSLOT NODE")]
    # Slot 5 has 5 keys at 2 per MIGRATE: 3 MIGRATEs, and a GETKEYSINSLOT that found it empty.
    assert sum(1 for s in steps if s == ("src", "MIGRATE")) == 4
    assert sum(1 for name, *w in log if name == "dst" and w[1:2] == ["SETSLOT"] and w[3] == "NODE") == 3


def test_migrate_refused_by_the_engine_is_a_node_error_and_nothing_is_reassigned() -> None:
    log: list[tuple[str, ...]] = []
    source, target, other = _primaries(log, {5: [b"k"]})
    assert isinstance(source.admin, RecordingAdmin)
    source.admin.migrate_reply = b"IOERR"
    with pytest.raises(NodeError, match="IOERR"):
        asyncio.run(SlotMigrator("amr-admin").move_slots(source, target, [other], [5]))
    assert [w for w in log if w[2:3] == ("SETSLOT",) and w[4:5] == ("NODE",)] == []
    assert ("dst", "CLUSTER", "SETSLOT", "5", "IMPORTING") in log  # it did get that far


def test_a_source_is_never_handed_more_than_a_few_short_migrate_pipelines() -> None:
    # Two batches from one source at once (two lanes), 300 slots with keys: a source that gets all
    # their MIGRATEs at once runs them back to back and answers nobody else meanwhile.
    log: list[tuple[str, ...]] = []
    keys = {slot: [f"k{slot}".encode()] for slot in range(300)}
    source, target, other = _primaries(log, keys)
    migrator = SlotMigrator("amr-admin")

    async def both() -> None:
        await asyncio.gather(
            migrator.move_slots(source, target, [other], list(range(150))),
            migrator.move_slots(source, other, [target], list(range(150, 300))),
        )

    asyncio.run(both())
    assert all(not left for left in keys.values())
    assert isinstance(source.admin, RecordingAdmin)
    assert source.admin.longest_migrate_pipeline == MIGRATES_PER_PIPELINE
    assert source.admin.most_migrating == MIGRATE_STREAMS
