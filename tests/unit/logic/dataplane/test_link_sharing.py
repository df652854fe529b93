"""Which commands may share a node connection with other clients (the router's multiplexing), by
command kind, a fixed list and the engine's COMMAND INFO flags and ACL categories."""

from __future__ import annotations

import pytest

from amr.logic.dataplane.command_routing import choose_kind, parse_command_table
from amr.logic.dataplane.link_sharing import choose_shared

# As COMMAND INFO gives them: name, arity, flags, first, last, step, ACL categories, tips, specs, subs.
TABLE = parse_command_table(
    [
        [b"get", 2, [b"readonly", b"fast"], 1, 1, 1, [b"@read", b"@string", b"@fast"], [], [], []],
        [b"set", -3, [b"write"], 1, 1, 1, [b"@write", b"@string"], [], [], []],
        [b"blpop", -3, [b"write", b"blocking"], 1, -2, 1, [b"@write", b"@list", b"@blocking"], [], [], []],
        [b"xread", -4, [b"readonly", b"blocking", b"movablekeys"], 0, 0, 0, [b"@blocking"], [], [], []],
        [b"select", 2, [b"loading", b"fast"], 0, 0, 0, [b"@fast", b"@connection"], [], [], []],
        [b"ping", -1, [b"fast"], 0, 0, 0, [b"@fast", b"@connection"], [], [], []],
        [b"publish", 3, [b"pubsub", b"fast"], 0, 0, 0, [b"@pubsub", b"@fast"], [], [], []],
        [b"unsubscribe", -1, [b"pubsub", b"noscript"], 0, 0, 0, [b"@pubsub"], [], [], []],
        [b"newblock", -2, [b"blocking"], 1, 1, 1, [], [], [], []],
        [b"newconn", -1, [], 0, 0, 0, [b"@connection"], [], [], []],
        [b"client", -2, [], 0, 0, 0, [], [], [], [
            [b"client|setname", 3, [b"noscript"], 0, 0, 0, [b"@connection"], [], [], []],
            [b"client|setinfo", -4, [b"noscript"], 0, 0, 0, [b"@connection"], [], [], []],
            *([b"client|" + sub, -2, [b"noscript"], 0, 0, 0, [b"@connection"], [], [], []]
              for sub in (b"tracking", b"reply", b"id")),
        ]],
    ]
)  # fmt: skip


def _shared(command: bytes, table: object = TABLE) -> bool:
    args = command.split()
    name = args[0].lower()
    return choose_shared(choose_kind(name, args), name, args, table)  # type: ignore[arg-type]


def test_the_command_table_marks_what_acts_on_its_connection() -> None:
    assert not TABLE[b"get"].stateful and not TABLE[b"publish"].stateful
    assert TABLE[b"blpop"].stateful and TABLE[b"select"].stateful and TABLE[b"unsubscribe"].stateful
    assert TABLE[b"client|setname"].stateful and TABLE[b"newconn"].stateful


@pytest.mark.parametrize(
    "command",
    [
        b"GET k", b"SET k v", b"MGET a b", b"MSET a 1 b 2", b"DEL a b", b"DBSIZE", b"FLUSHALL", b"KEYS *",
        b"SCAN 0", b"INFO", b"RANDOMKEY", b"PING", b"ECHO hi", b"PUBLISH ch m", b"PUBSUB NUMSUB ch", b"COMMAND COUNT",
        b"CLIENT SETINFO LIB-NAME redis-py", b"CLIENT MAINT_NOTIFICATIONS ON", b"EVAL script 0", b"CLUSTER INFO", b"QUIT", b"NOSUCHCOMMAND x",
        # Answered by the gateway, about the gateway's connections: no node connection's state.
        b"CLIENT ID", b"CLIENT LIST", b"CLIENT INFO", b"CLIENT KILL ID 5", b"CLIENT SETNAME n", b"CLIENT GETNAME",
    ],
)  # fmt: skip
def test_stateless_commands_share(command: bytes) -> None:
    assert _shared(command)


@pytest.mark.parametrize(
    "command",
    [
        b"MULTI", b"EXEC", b"DISCARD", b"WATCH k", b"UNWATCH", b"AUTH pw", b"HELLO 3", b"SUBSCRIBE ch",
        b"PSUBSCRIBE p*", b"SSUBSCRIBE ch", b"UNSUBSCRIBE", b"BLPOP q 0", b"XREAD STREAMS s 0",
        b"SELECT 0", b"CLIENT SETNAME", b"CLIENT TRACKING ON", b"CLIENT REPLY OFF", b"CLIENT",
        b"RESET", b"READONLY", b"READWRITE", b"ASKING", b"WAIT 1 0", b"MONITOR", b"NEWBLOCK k", b"NEWCONN",
    ],
)  # fmt: skip
def test_commands_that_change_or_wait_on_their_connection_do_not_share(command: bytes) -> None:
    assert not _shared(command)


def test_without_a_command_table_the_fixed_list_still_keeps_blocking_and_state_apart() -> None:
    for command in (b"BLPOP q 0", b"BZPOPMIN z 0", b"SELECT 0", b"CLIENT UNBLOCK 5", b"WAIT 1 0"):
        assert not _shared(command, {})
    assert _shared(b"GET k", {}) and _shared(b"CLIENT SETINFO LIB-VER 5", {})
    assert not _shared(b"CLIENT MAINT_NOTIFICATIONS ON", {})  # unknown only by a table that is known
