"""Which shard a client command goes to: its kind (routed by slot, split across shards, fanned out,
handled by the router, refused) and its keys.

Key positions come from the engine's own ``COMMAND INFO`` (parsed once per gateway process by
``parse_command_table``), so every command the engine knows is routed by the keys it declares.
Commands whose keys move with their arguments (EVAL, ZUNIONSTORE, XREAD, SORT ... STORE) are read
here by their documented syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amr.logic.keyspace.keyslot import choose_key_slot

# Command kinds. Plain ints: the router compares them on every command.
KEYED = 0  # keys (possibly none): one slot, or any shard when keyless
SPLIT_SUM = 1  # DEL UNLINK EXISTS TOUCH: per-shard parts, integer replies summed
MGET = 2  # per-shard parts, values put back in key order
MSET = 3  # per-shard parts, OK when every part is OK
ALL_SUM = 4  # DBSIZE: every shard, integers summed
ALL_FIRST = 5  # FLUSHALL FLUSHDB SCRIPT LOAD/FLUSH FUNCTION ...: every shard, first reply unless an error
KEYS = 6  # every shard, arrays concatenated
RANDOMKEY = 7  # every shard, one of the keys found
SCAN = 8  # one shard at a time, the cursor says which
INFO = 9  # every shard, keyspace summed, the rest from the first
BLOCKED = 10  # refused: CLUSTER ...
MULTI = 11
EXEC = 12
DISCARD = 13
WATCH = 14
UNWATCH = 15
AUTH = 16  # AUTH, HELLO: every open node connection, remembered for new ones
SUBSCRIBE = 17  # SUBSCRIBE PSUBSCRIBE SSUBSCRIBE: the connection becomes a pub/sub splice
QUIT = 18
PUBLISH = 19  # to the pub/sub node (``amr.logic.dataplane.pubsub``), where every subscriber is
PUBSUB = 20  # PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARD...: every shard, replies merged
MONITOR = 21  # every shard's stream of commands, merged
CLIENT = 22  # CLIENT ...: TRACKING on every node connection (``amr.logic.dataplane.tracking``), else one node
CLIENTS = 23  # CLIENT LIST/INFO/KILL/ID/SETNAME/GETNAME/SETINFO: the gateway's, about its connections

_SPECIAL: dict[bytes, int] = {
    b"del": SPLIT_SUM, b"unlink": SPLIT_SUM, b"exists": SPLIT_SUM, b"touch": SPLIT_SUM,
    b"mget": MGET, b"mset": MSET, b"dbsize": ALL_SUM, b"flushall": ALL_FIRST, b"flushdb": ALL_FIRST,
    b"keys": KEYS, b"randomkey": RANDOMKEY, b"scan": SCAN, b"info": INFO, b"cluster": BLOCKED,
    b"multi": MULTI, b"exec": EXEC, b"discard": DISCARD, b"watch": WATCH, b"unwatch": UNWATCH,
    b"auth": AUTH, b"hello": AUTH, b"subscribe": SUBSCRIBE, b"psubscribe": SUBSCRIBE,
    b"ssubscribe": SUBSCRIBE, b"quit": QUIT, b"publish": PUBLISH, b"pubsub": PUBSUB,
    b"monitor": MONITOR, b"client": CLIENT,
}  # fmt: skip
# CLIENT subcommands about the connections themselves (the gateway's, not any one node's), with
# their argument counts (negative: at least); a malformed one goes to a node, for its arity error.
_CLIENTS_ARITY = {
    b"list": -2, b"info": 2, b"kill": -3, b"id": 2, b"setname": 3, b"getname": 2, b"setinfo": 4,
}  # fmt: skip
# Subcommands that change every shard's state, so every shard must run them.
_ALL_SUBCOMMANDS = frozenset(
    {b"script|load", b"script|flush", b"function|load", b"function|delete", b"function|flush",
     b"function|restore"}
)  # fmt: skip

# ACL categories of commands that act on their connection rather than on data.
_STATEFUL_CATEGORIES = frozenset({b"@connection", b"@transaction", b"@blocking"})

CROSSSLOT_REPLY = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Where a command's keys are (first, last, step as COMMAND INFO gives them; last < 0 counts from
    the end), whether they move with the arguments, whether it has subcommands, and whether it changes
    or waits on the connection it runs on (``stateful``: blocking, @connection, @transaction, a
    subscription), so that it may not share a node connection with other clients."""

    first: int
    last: int
    step: int
    movable: bool = False
    container: bool = False
    stateful: bool = False


CommandTable = dict[bytes, KeySpec]


def _text(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def parse_command_table(reply: Any) -> CommandTable:
    """The key positions of every command (and subcommand, as ``name|sub``) in a ``COMMAND INFO``
    reply already decoded into lists; entries that are not well formed are skipped."""
    table: CommandTable = {}

    def add(entry: Any) -> None:
        if not isinstance(entry, list) or len(entry) < 6:
            return
        name = _text(entry[0]).lower()
        flags = {_text(f).lower() for f in entry[2]} if isinstance(entry[2], list) else set()
        subs = entry[9] if len(entry) > 9 and isinstance(entry[9], list) else []
        acl = entry[6] if len(entry) > 6 and isinstance(entry[6], list) else []
        categories = {_text(c).lower() for c in acl}
        stateful = (
            b"blocking" in flags
            or bool(categories & _STATEFUL_CATEGORIES)
            or (b"pubsub" in flags and b"noscript" in flags)  # (UN)SUBSCRIBE, not PUBLISH
        )
        try:
            spec = KeySpec(
                int(entry[3]), int(entry[4]), int(entry[5]), b"movablekeys" in flags, bool(subs), stateful
            )
        except (TypeError, ValueError):
            return
        table[name] = spec
        for sub in subs:
            add(sub)

    if isinstance(reply, list):
        for entry in reply:
            add(entry)
    return table


def choose_kind(name: bytes, args: list[bytes]) -> int:
    """The kind of a command by its lower-case name (and subcommand for SCRIPT/FUNCTION/CLIENT)."""
    if name == b"client" and len(args) > 1:
        arity = _CLIENTS_ARITY.get(args[1].lower(), 0)
        if len(args) == arity or 0 < -arity <= len(args):
            return CLIENTS
    kind = _SPECIAL.get(name)
    if kind is not None:
        return kind
    if (name == b"script" or name == b"function") and len(args) > 1:
        if name + b"|" + args[1].lower() in _ALL_SUBCOMMANDS:
            return ALL_FIRST
    return KEYED


def _numkeys(args: list[bytes], at: int) -> list[bytes]:
    try:
        n = int(args[at])
    except (IndexError, ValueError):
        return []
    return args[at + 1 : at + 1 + max(n, 0)]


def _after_token(args: list[bytes], token: bytes) -> list[bytes]:
    for i in range(2, len(args) - 1):
        if args[i].upper() == token:
            return [args[i + 1]]
    return []


def _movable_keys(name: bytes, args: list[bytes], spec: KeySpec | None) -> list[bytes]:
    if name in (b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"):
        return _numkeys(args, 2)
    if name in (b"zunionstore", b"zinterstore", b"zdiffstore"):
        return args[1:2] + _numkeys(args, 2)
    if name in (b"zunion", b"zinter", b"zdiff", b"zintercard", b"sintercard", b"lmpop", b"zmpop"):
        return _numkeys(args, 1)
    if name in (b"blmpop", b"bzmpop"):
        return _numkeys(args, 2)
    if name in (b"xread", b"xreadgroup"):
        for i in range(1, len(args)):
            if args[i].upper() == b"STREAMS":
                rest = args[i + 1 :]
                return rest[: len(rest) // 2]
        return []
    if name in (b"sort", b"sort_ro"):
        return args[1:2] + _after_token(args, b"STORE")
    if name in (b"georadius", b"georadiusbymember"):
        return args[1:2] + _after_token(args, b"STORE") + _after_token(args, b"STOREDIST")
    if spec is not None and spec.first > 0:
        return args[spec.first : spec.first + 1]
    return []


def choose_keys(name: bytes, args: list[bytes], table: CommandTable) -> list[bytes]:
    """The keys of a command by the engine's key positions (unknown commands and keyless ones have
    none: any shard answers them, the engine refusing what it does not know)."""
    spec = table.get(name)
    if spec is not None and spec.container and len(args) > 1:
        spec = table.get(name + b"|" + args[1].lower(), spec)
    if spec is None or spec.movable:
        return _movable_keys(name, args, spec)
    first = spec.first
    if first <= 0 or first >= len(args):
        return []
    last = spec.last
    if last < 0:
        last = len(args) + last
    step = spec.step if spec.step > 0 else 1
    return args[first : min(last, len(args) - 1) + 1 : step]


def choose_slot(keys: list[bytes]) -> int:
    """The one slot every key hashes to; -1 for no keys; -2 when they hash to different slots."""
    if not keys:
        return -1
    slot = choose_key_slot(keys[0])
    for key in keys[1:]:
        if choose_key_slot(key) != slot:
            return -2
    return slot


def plan_split(kind: int, args: list[bytes]) -> dict[int, list[int]] | None:
    """For a splittable command: the key indexes (keys for DEL/MGET..., key-value pairs for MSET)
    each slot gets, in first-seen slot order (the engine refuses a multi-key command across slots
    even on one node, so each slot is one part); None when the arguments are malformed (the engine
    then answers the arity error)."""
    if kind == MSET:
        if len(args) < 3 or len(args) % 2 == 0:
            return None
        count = (len(args) - 1) // 2
        keys = [args[1 + 2 * i] for i in range(count)]
    else:
        if len(args) < 2:
            return None
        keys = args[1:]
    parts: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        parts.setdefault(choose_key_slot(key), []).append(i)
    return parts
