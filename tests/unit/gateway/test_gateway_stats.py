"""The gateway's counters for `amr monitord`: each worker totals its audit events per database and
answers ``{"op": "stats"}`` on its socket with them and its open connections, even alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from amr.gateway.audit import AuditLog
from amr.gateway.context import GatewayContext
from amr.logic.security.bruteforce import AuthFailureGuard
from amr.questions import ask
from amr.settings import GatewaySettings

DB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/redisEnterprise/c/databases/default"


def test_audit_events_are_totalled_per_database(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "connections.jsonl", 1 << 20, 1)
    audit.event("connect", DB, 10000, "127.0.0.1", 5000)
    audit.event("auth_failure", DB, 10000, "127.0.0.1", 5000, "WRONGPASS")
    audit.event("disconnect", DB, 10000, "127.0.0.1", 5000, durationMs=3, bytesIn=40, bytesOut=7)
    audit.event("disconnect", DB, 10000, "127.0.0.1", 5001, bytesIn=2, bytesOut=1)
    audit.event("connect", "other", 10001, "127.0.0.1", 5002)
    assert audit.totals == {
        DB: {"connect": 1, "auth_failure": 1, "disconnect": 2, "bytesIn": 42, "bytesOut": 8},
        "other": {"connect": 1},
    }
    audit.flush()


def test_a_lone_worker_answers_the_stats_question(tmp_path: Path) -> None:
    async def scenario() -> None:
        audit = AuditLog(tmp_path / "connections.jsonl", 1 << 20, 1)
        ctx = GatewayContext.create(
            GatewaySettings(workers=1), audit, guard=AuthFailureGuard(10, 60, 60), run_dir=tmp_path
        )
        ctx.connections[DB] = 3
        audit.event("connect", DB, 10000, "127.0.0.1", 5000)
        await ctx.clients.start()
        try:
            answer = await ask(tmp_path / "gateway-0.sock", b'{"op": "stats"}\n', 2.0, 1 << 20)
        finally:
            await ctx.clients.close()
            audit.flush()
        assert answer is not None
        assert answer["connections"] == {DB: 3}
        assert answer["totals"] == {DB: {"connect": 1}}
        assert answer["started"] == ctx.started

    asyncio.run(scenario())


def test_no_answer_is_none(tmp_path: Path) -> None:
    assert asyncio.run(ask(tmp_path / "gateway-9.sock", b'{"op": "stats"}\n', 0.5, 1 << 20)) is None
