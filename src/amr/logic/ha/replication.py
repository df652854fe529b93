"""Reading what a node says of its replication (``INFO replication``), for the `amr ha` coordinator
and the node launcher alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicationView:
    """What a node's ``INFO replication`` says of its role: ``master`` or ``slave``; for a replica the
    port of the primary it follows, its link (``up`` or ``down``), whether it has been in sync with
    that primary since it started (``synced``) and its replication offset."""

    role: str
    master_port: int | None = None
    link: str = ""
    synced: bool = False
    offset: int = 0
    # A primary's ``master_replid`` and ``master_replid2`` (the id of the primary it replaced, if it
    # was promoted; zeros otherwise).
    replid: str = ""
    replid2: str = ""


def parse_replication_view(text: str) -> ReplicationView | None:
    """Read an ``INFO replication`` reply; None if it does not say the node's role.

    A replica counts as ``synced`` while its link is up, and once it has been up since the replica
    started (``master_link_down_since_seconds`` is -1 until the first sync completes)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    role = fields.get("role")
    if role == "master":
        return ReplicationView(
            "master",
            offset=_int(fields.get("master_repl_offset"), 0),
            replid=fields.get("master_replid", ""),
            replid2=fields.get("master_replid2", ""),
        )
    if role != "slave":
        return None
    port = _int(fields.get("master_port"), -1)
    up = fields.get("master_link_status") == "up"
    down_since = _int(fields.get("master_link_down_since_seconds"), -1)
    return ReplicationView(
        "slave",
        master_port=port if port > 0 else None,
        link="up" if up else "down",
        synced=up or down_since >= 0,
        offset=_int(fields.get("slave_repl_offset"), 0),
    )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default
