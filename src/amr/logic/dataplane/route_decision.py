"""Where an EnterpriseCluster client command goes, decided once per command.

``choose_route`` classifies a command (``amr.logic.dataplane.command_routing`` kinds), finds the one slot its
keys hash to and the node serving that slot, and says whether it may travel on a node connection
shared with other clients (``amr.logic.dataplane.link_sharing``). The router executes the decision as it is;
a transaction reads the same decision to pin itself to a node.

The decision is a plain tuple (``Route``): the router takes one per command, on its hottest path.
"""

from __future__ import annotations

from amr.logic.dataplane.cluster_slots import SlotMap
from amr.logic.dataplane.command_routing import (
    KEYED,
    MGET,
    MSET,
    PUBLISH,
    SPLIT_SUM,
    SUBSCRIBE,
    WATCH,
    CommandTable,
    choose_keys,
    choose_kind,
    choose_slot,
)
from amr.logic.dataplane.link_sharing import choose_shared
from amr.logic.dataplane.pubsub import choose_pubsub_node

# (kind, slot, socket, shared):
#   kind    the command's kind (``amr.logic.dataplane.command_routing``: KEYED, SPLIT_SUM, MGET, SCAN, ...)
#   slot    the one slot its keys hash to; -1 for no keys, -2 when they hash to different slots
#   socket  the node serving ``slot`` ("" without a slot: any node, or the kind's own choice)
#   shared  whether it may go over a node connection shared with other clients
Route = tuple[int, int, str, bool]


def choose_route(
    name: bytes, args: list[bytes], table: CommandTable, slot_map: SlotMap, sharing: bool = True
) -> Route:
    """The route of one command (lower-case ``name``, its arguments with the name first): its kind,
    the slot of its keys and the node serving it (a slot no node serves goes to the first primary,
    whose MOVED then says where it went), and whether it may share a node connection (always False
    for a client that no longer ``sharing``: it has connections of its own for good).

    Keys by kind: the engine's key positions for a keyed command, every argument for DEL/UNLINK/
    EXISTS/TOUCH/MGET/WATCH, every other argument for MSET, the channels for SSUBSCRIBE. PUBLISH
    goes to the pub/sub node (``amr.logic.dataplane.pubsub``)."""
    kind = choose_kind(name, args)
    if kind == KEYED:
        keys = choose_keys(name, args, table)
    elif kind == SPLIT_SUM or kind == MGET or kind == WATCH:
        keys = args[1:]
    elif kind == MSET:
        keys = args[1::2]
    elif kind == SUBSCRIBE and name == b"ssubscribe":
        keys = args[1:]
    else:
        keys = []
    slot = choose_slot(keys) if keys else -1
    socket = ""
    if slot >= 0:
        index = slot_map.owner[slot]
        primaries = slot_map.primaries
        socket = primaries[index] if index >= 0 else primaries[0]
    elif kind == PUBLISH:
        socket = choose_pubsub_node(slot_map)
    return kind, slot, socket, sharing and choose_shared(kind, name, args, table)
