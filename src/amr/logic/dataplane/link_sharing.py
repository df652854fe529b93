"""Which client commands may travel on a node connection shared with other clients (the
EnterpriseCluster router's multiplexing): those that neither change nor wait on the connection they
run on, so that the clients on one connection cannot see or hold up each other.

A shared connection carries the commands of every client with the same replayed AUTH/HELLO (same
user, password and protocol version); the engine's ACL and reply format are then the same for all of
them. A client's first command that is not shareable moves it to connections of its own for good
(``amr.gateway.routing.router``).
"""

from __future__ import annotations

from amr.logic.dataplane.command_routing import (
    AUTH,
    CLIENT,
    DISCARD,
    EXEC,
    KEYED,
    MONITOR,
    MULTI,
    SUBSCRIBE,
    UNWATCH,
    WATCH,
    CommandTable,
)

# Kinds the router runs on the client's own connections: transactions, credentials, subscriptions.
_DEDICATED_KINDS = frozenset({MULTI, EXEC, DISCARD, WATCH, UNWATCH, AUTH, SUBSCRIBE, MONITOR})
# In a connection category, yet answered the same on any connection.
_STATELESS = frozenset({b"ping", b"echo", b"command", b"quit"})
# CLIENT SETINFO only labels the connection (redis-py sends it on every connect); HELP is text.
_STATELESS_CLIENT = frozenset({b"setinfo", b"help"})
# Stateful whatever the command table says (it may not be read yet): blocking commands would hold
# up every client of a shared connection, the others change or read the connection's own state.
_STATEFUL = frozenset(
    {b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin", b"bzpopmax", b"bzmpop",
     b"xread", b"xreadgroup", b"wait", b"waitaof", b"client", b"select", b"reset", b"readonly",
     b"readwrite", b"asking", b"monitor", b"unsubscribe", b"punsubscribe", b"sunsubscribe"}
)  # fmt: skip


def choose_shared(kind: int, name: bytes, args: list[bytes], table: CommandTable) -> bool:
    """Whether a command (its ``choose_kind`` kind, lower-case name and arguments) may go over a node
    connection shared with other clients: not a transaction, AUTH/HELLO or subscription, not blocking,
    and not one that sets or reads connection state (by the engine's COMMAND INFO flags and ACL
    categories, and a fixed list for when the table is not known). Commands (and CLIENT subcommands)
    the engine does not know are shareable: it answers them with an error and changes nothing."""
    if kind != KEYED:
        if kind == CLIENT:
            if len(args) < 2:
                return False
            sub = args[1].lower()
            # A subcommand the engine does not know it refuses, changing nothing (redis-py sends
            # CLIENT MAINT_NOTIFICATIONS on every connect, for servers that have it).
            return sub in _STATELESS_CLIENT or (bool(table) and b"client|" + sub not in table)
        return kind not in _DEDICATED_KINDS
    if name in _STATELESS:
        return True
    if name in _STATEFUL:
        return False
    spec = table.get(name)
    return spec is None or not spec.stateful
