"""INFO through an EnterpriseCluster endpoint: the database's view made from every shard's INFO.

An EnterpriseCluster endpoint looks like one non-clustered Redis, so its INFO must too: tools read
``cluster_enabled`` (redis-py's own test set-up among them) or ``redis_mode``/``server_mode`` to
decide whether to speak the cluster protocol, which the endpoint refuses. So the merged reply says
``cluster_enabled:0`` and standalone, and shows the database rather than one node:

- what adds up across shards is summed: keys and expires per db, clients (each counted by the node
  it is connected to: the gateway's node connections included), memory, commands, hits, misses,
  network bytes, errors, replicas, CPU; the ``*_human`` renderings follow their summed value;
- per-command and per-error statistics are merged (calls, time, failures summed; time per call
  recomputed) over every command any shard ran;
- ``avg_ttl`` is averaged over the shards' expiring keys;
- anything else (versions, settings, ratios, timestamps) is the first shard's.

The node's own layout is kept: its sections in its order, each field where it had it.
"""

from __future__ import annotations

from amr.logic.dataplane.reply_merge import first_error
from amr.logic.resp.frames import parse_bulk, render_bulk

# Fields the database shows as one node would, whatever each shard says.
_AS_ONE_NODE = {
    b"cluster_enabled": b"0",
    b"redis_mode": b"standalone",
    b"server_mode": b"standalone",
    b"cluster_connections": b"0",
}
# Fields that add up across shards (integers, or floats for rates and CPU seconds).
_SUMMED = frozenset(
    {
        # Clients
        b"connected_clients", b"blocked_clients", b"tracking_clients", b"pubsub_clients",
        b"watching_clients", b"clients_in_timeout_table", b"total_watched_keys", b"total_blocking_keys",
        b"total_blocking_keys_on_nokey",
        # Memory
        b"used_memory", b"used_memory_rss", b"used_memory_peak", b"used_memory_overhead",
        b"used_memory_startup", b"used_memory_dataset", b"allocator_allocated", b"allocator_active",
        b"allocator_resident", b"used_memory_lua", b"used_memory_vm_eval", b"used_memory_vm_functions",
        b"used_memory_vm_total", b"used_memory_functions", b"used_memory_scripts", b"maxmemory",
        b"mem_fragmentation_bytes", b"mem_not_counted_for_evict", b"mem_replication_backlog",
        b"mem_total_replication_buffers", b"mem_clients_slaves", b"mem_clients_normal", b"mem_aof_buffer",
        b"lazyfree_pending_objects", b"lazyfreed_objects",
        # Persistence
        b"rdb_changes_since_last_save", b"rdb_saves", b"aof_rewrites",
        # Stats
        b"total_connections_received", b"total_commands_processed", b"instantaneous_ops_per_sec",
        b"total_net_input_bytes", b"total_net_output_bytes", b"total_net_repl_input_bytes",
        b"total_net_repl_output_bytes", b"instantaneous_input_kbps", b"instantaneous_output_kbps",
        b"instantaneous_input_repl_kbps", b"instantaneous_output_repl_kbps", b"rejected_connections",
        b"sync_full", b"sync_partial_ok", b"sync_partial_err", b"expired_keys",
        b"expired_time_cap_reached_count", b"evicted_keys", b"evicted_clients", b"evicted_scripts",
        b"keyspace_hits", b"keyspace_misses", b"pubsub_channels", b"pubsub_patterns",
        b"pubsubshard_channels", b"total_forks", b"tracking_total_keys", b"tracking_total_items",
        b"tracking_total_prefixes", b"unexpected_error_replies", b"total_error_replies",
        b"total_reads_processed", b"total_writes_processed", b"client_query_buffer_limit_disconnections",
        b"client_output_buffer_limit_disconnections", b"acl_access_denied_auth", b"acl_access_denied_cmd",
        b"acl_access_denied_key", b"acl_access_denied_channel",
        # Replication
        b"connected_slaves",
        # CPU
        b"used_cpu_sys", b"used_cpu_user", b"used_cpu_sys_children", b"used_cpu_user_children",
        b"used_cpu_sys_main_thread", b"used_cpu_user_main_thread",
    }
)  # fmt: skip
_COMMANDSTATS = b"Commandstats"
_ERRORSTATS = b"Errorstats"
_KEYSPACE = b"Keyspace"

Section = dict[bytes, bytes]


def _parse(text: bytes) -> list[tuple[bytes, Section]]:
    """An INFO text as its sections in order, each its fields in order."""
    sections: list[tuple[bytes, Section]] = []
    for line in text.split(b"\r\n"):
        if line.startswith(b"# "):
            sections.append((line[2:], {}))
        elif line and sections:
            name, sep, value = line.partition(b":")
            if sep:
                sections[-1][1][name] = value
    return sections


def _number(value: bytes) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None


def _render_number(total: int | float, like: bytes) -> bytes:
    if isinstance(total, int):
        return b"%d" % total
    decimals = len(like.partition(b".")[2]) or 2
    return b"%.*f" % (decimals, total)


def render_human_bytes(n: int) -> bytes:
    """A byte count as the engine's ``*_human`` fields show it (``2.64M``, ``512B``)."""
    if n < 1024:
        return b"%dB" % n
    value = float(n)
    for unit in b"KMGTP":
        value /= 1024
        if value < 1024 or unit == ord("P"):
            return b"%.2f%c" % (value, unit)
    raise AssertionError("unreachable")


def _pairs(value: bytes) -> dict[bytes, bytes]:
    """``calls=4,usec=29,...`` as its fields."""
    return dict(item.partition(b"=")[::2] for item in value.split(b","))


def _merge_keyspace(values: list[bytes]) -> bytes:
    totals: dict[bytes, int] = {}
    ttl_weight = 0
    for value in values:
        fields = _pairs(value)
        expires = int(fields.get(b"expires", b"0") or 0)
        ttl_weight += int(fields.get(b"avg_ttl", b"0") or 0) * expires
        for k, v in fields.items():
            if k != b"avg_ttl" and v.isdigit():
                totals[k] = totals.get(k, 0) + int(v)
    fields_out = dict(totals)
    if b"avg_ttl" in _pairs(values[0]):
        expires = totals.get(b"expires", 0)
        fields_out[b"avg_ttl"] = ttl_weight // expires if expires else 0
    return b",".join(b"%s=%d" % (k, v) for k, v in fields_out.items())


def _merge_commandstat(values: list[bytes]) -> bytes:
    totals: dict[bytes, float] = {}
    for value in values:
        for k, v in _pairs(value).items():
            if k != b"usec_per_call":
                totals[k] = totals.get(k, 0) + float(v or 0)
    calls = totals.get(b"calls", 0)
    out = []
    for k in _pairs(values[0]):
        if k == b"usec_per_call":
            out.append(b"usec_per_call=%.2f" % (totals.get(b"usec", 0) / calls if calls else 0.0))
        else:
            out.append(b"%s=%d" % (k, totals.get(k, 0)))
    return b",".join(out)


def _merge_field(section: bytes, name: bytes, values: list[bytes], sums: dict[bytes, int]) -> bytes:
    """One field's value for the database, from the shards that have it (first shard first)."""
    fixed = _AS_ONE_NODE.get(name)
    if fixed is not None:
        return fixed
    if section == _KEYSPACE:
        return _merge_keyspace(values)
    if section == _COMMANDSTATS:
        return _merge_commandstat(values)
    if section == _ERRORSTATS:
        return b"count=%d" % sum(int(_pairs(v).get(b"count", b"0") or 0) for v in values)
    if name in _SUMMED:
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers):
            total = sum(n for n in numbers if n is not None)
            if isinstance(total, int):
                sums[name] = total
            return _render_number(total, values[0])
    if name.endswith(b"_human"):
        base = sums.get(name[: -len(b"_human")])
        if base is not None:
            return render_human_bytes(base)
    return values[0]


def merge_info_texts(texts: list[bytes]) -> bytes:
    """The database's INFO text from every shard's (see the module's docstring)."""
    parsed = [_parse(t) for t in texts]
    order: list[bytes] = []
    fields: dict[bytes, dict[bytes, list[bytes]]] = {}
    for sections in parsed:
        for name, section in sections:
            if name not in fields:
                order.append(name)
                fields[name] = {}
            merged = fields[name]
            for key, value in section.items():
                merged.setdefault(key, []).append(value)
    out: list[bytes] = []
    sums: dict[bytes, int] = {}
    for name in order:
        lines = [b"# " + name]
        for key, values in fields[name].items():
            lines.append(key + b":" + _merge_field(name, key, values, sums))
        out.append(b"\r\n".join(lines) + b"\r\n")
    return b"\r\n".join(out)


def merge_info(frames: list[bytes]) -> bytes:
    """INFO fanned out to every shard: the database's INFO (``merge_info_texts``), in the reply type
    the first shard used (a bulk string, or RESP3's verbatim text); the first error wins."""
    err = first_error(frames)
    if err is not None:
        return err
    body = merge_info_texts([parse_bulk(f) or b"" for f in frames])
    if frames[0][:1] == b"=":
        return b"=%d\r\ntxt:%s\r\n" % (len(body) + 4, body)
    return render_bulk(body)
