"""Common commands with valkey-glide (PyPI valkey-glide), one check at a time, against one target.

Runs in the compatibility venv (compat/clients.py installs glide there); compat/scripts.py starts it
with the target in the environment: COMPAT_HOST, COMPAT_PORT, COMPAT_PASSWORD, COMPAT_TLS (1: TLS,
verified against SSL_CERT_FILE), COMPAT_CLUSTER (1: GlideClusterClient). Each check's outcome goes
to COMPAT_RESULTS_FILE as a JSON line, in the shape of redispy_plugin's records. The checks are the
ones of compat/ioredis_check.js, under the same names.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

from glide import (
    AdvancedGlideClientConfiguration,
    AdvancedGlideClusterClientConfiguration,
    Batch,
    ClusterBatch,
    ClusterScanCursor,
    ExpirySet,
    ExpiryType,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    InfoSection,
    NodeAddress,
    RangeByIndex,
    Script,
    ServerCredentials,
    TlsAdvancedConfiguration,
)

HOST = os.environ["COMPAT_HOST"]
PORT = int(os.environ["COMPAT_PORT"])
PASSWORD = os.environ["COMPAT_PASSWORD"]
TLS = os.environ.get("COMPAT_TLS") == "1"
CLUSTER = os.environ.get("COMPAT_CLUSTER") == "1"
RESULTS = os.environ["COMPAT_RESULTS_FILE"]
TIMEOUT_MS = 5000


async def connect(password: str = PASSWORD, name: str | None = None) -> GlideClient | GlideClusterClient:
    tls = None
    if TLS:
        with open(os.environ["SSL_CERT_FILE"], "rb") as f:
            tls = TlsAdvancedConfiguration(root_pem_cacerts=f.read())
    common = dict(
        addresses=[NodeAddress(HOST, PORT)],
        use_tls=TLS,
        credentials=ServerCredentials(password=password),
        request_timeout=TIMEOUT_MS,
        client_name=name,
    )
    if CLUSTER:
        adv = AdvancedGlideClusterClientConfiguration(connection_timeout=TIMEOUT_MS, tls_config=tls)
        return await GlideClusterClient.create(GlideClusterClientConfiguration(**common, advanced_config=adv))
    adv2 = AdvancedGlideClientConfiguration(connection_timeout=TIMEOUT_MS, tls_config=tls)
    return await GlideClient.create(GlideClientConfiguration(**common, advanced_config=adv2))


def expect(value: object, wanted: object) -> None:
    if value != wanted:
        raise AssertionError(f"got {value!r}, expected {wanted!r}")


async def check_ping(c) -> None:
    expect(await c.ping(), b"PONG")


async def check_set_get_ttl(c) -> None:
    expect(await c.set("g:str", "v1", expiry=ExpirySet(ExpiryType.SEC, 60)), "OK")
    expect(await c.get("g:str"), b"v1")
    ttl = await c.ttl("g:str")
    assert 0 < ttl <= 60, ttl


async def check_incr(c) -> None:
    await c.delete(["g:ctr"])
    expect(await c.incr("g:ctr"), 1)
    expect(await c.incrby("g:ctr", 41), 42)


async def check_hash(c) -> None:
    await c.delete(["g:h"])
    expect(await c.hset("g:h", {"a": "1", "b": "2"}), 2)
    expect(await c.hgetall("g:h"), {b"a": b"1", b"b": b"2"})


async def check_list(c) -> None:
    await c.delete(["g:l"])
    expect(await c.rpush("g:l", ["a", "b", "c"]), 3)
    expect(await c.lrange("g:l", 0, -1), [b"a", b"b", b"c"])


async def check_set(c) -> None:
    await c.delete(["g:s"])
    expect(await c.sadd("g:s", ["a", "b"]), 2)
    expect(await c.smembers("g:s"), {b"a", b"b"})


async def check_sorted_set(c) -> None:
    await c.delete(["g:z"])
    expect(await c.zadd("g:z", {"a": 1.0, "b": 2.0}), 2)
    expect(await c.zrange_withscores("g:z", RangeByIndex(0, -1)), {b"a": 1.0, b"b": 2.0})


async def check_mset_mget_same_slot(c) -> None:
    expect(await c.mset({"{g}a": "1", "{g}b": "2"}), "OK")
    expect(await c.mget(["{g}a", "{g}b"]), [b"1", b"2"])


async def check_mget_across_slots(c) -> None:
    expect(await c.mset({"g:x1": "1", "g:x2": "2", "g:x3": "3"}), "OK")
    expect(await c.mget(["g:x1", "g:x2", "g:x3"]), [b"1", b"2", b"3"])
    expect(await c.delete(["g:x1", "g:x2", "g:x3"]), 3)


async def check_transaction(c) -> None:
    batch = ClusterBatch(is_atomic=True) if CLUSTER else Batch(is_atomic=True)
    batch.set("{g}t1", "a").incr("{g}t2").get("{g}t1")
    await c.delete(["{g}t2"])
    expect(await c.exec(batch, raise_on_error=True), ["OK", 1, b"a"])


async def check_pipeline(c) -> None:
    batch = ClusterBatch(is_atomic=False) if CLUSTER else Batch(is_atomic=False)
    for i in range(50):
        batch.set(f"g:p{i}", str(i))
    for i in range(50):
        batch.get(f"g:p{i}")
    out = await c.exec(batch, raise_on_error=True)
    expect(out[50:], [str(i).encode() for i in range(50)])


async def check_lua(c) -> None:
    script = Script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
    expect(await c.invoke_script(script, keys=["g:lua"], args=["hi"]), b"hi")


async def check_scan(c) -> None:
    await c.mset({f"g:scan{i}": "1" for i in range(20)})
    found: set[bytes] = set()
    if CLUSTER:
        cursor = ClusterScanCursor()
        while not cursor.is_finished():
            cursor, keys = await c.scan(cursor, match="g:scan*")
            found.update(keys)
    else:
        cur: bytes | str = "0"
        while True:
            cur, keys = await c.scan(cur, match="g:scan*")
            found.update(keys)
            if cur in (b"0", "0"):
                break
    expect(len(found), 20)


async def check_expire_persist(c) -> None:
    await c.set("g:e", "1")
    expect(await c.expire("g:e", 100), True)
    expect(await c.persist("g:e"), True)
    expect(await c.ttl("g:e"), -1)


async def check_streams(c) -> None:
    await c.delete(["g:st"])
    entry = await c.xadd("g:st", [("f", "v")])
    out = await c.xread({"g:st": "0-0"})
    expect(list(out[b"g:st"]), [entry])


async def check_blocking_pop(c) -> None:
    other = await connect()
    try:
        await c.delete(["g:bl"])
        waiter = asyncio.ensure_future(c.blpop(["g:bl"], 3))
        await asyncio.sleep(0.2)  # let BLPOP block first: the push must wake it
        await other.rpush("g:bl", ["x"])
        expect(await waiter, [b"g:bl", b"x"])
    finally:
        await other.close()


async def check_pubsub(c) -> None:
    sub = await connect()
    try:
        await sub.subscribe({"g:chan"}, timeout_ms=TIMEOUT_MS)
        receivers = await c.publish("hello", "g:chan")
        if not CLUSTER:  # a cluster node counts only its own subscribers
            expect(receivers, 1)
        msg = await asyncio.wait_for(sub.get_pubsub_message(), 5)
        expect((msg.channel, msg.message), (b"g:chan", b"hello"))
    finally:
        await sub.close()


async def check_info(c) -> None:
    text = await c.info([InfoSection.SERVER, InfoSection.CLUSTER])
    if isinstance(text, dict):  # a cluster client asks every node
        text = next(iter(text.values()))
    text = text.decode() if isinstance(text, bytes) else text
    assert "redis_version:" in text, text[:200]
    expect("cluster_enabled:1" in text, CLUSTER)


async def check_client_name(c) -> None:
    named = await connect(name="compat-glide")
    try:
        expect(await named.client_getname(), b"compat-glide")
    finally:
        await named.close()


async def check_wrong_password(c) -> None:
    try:
        bad = await connect(password="not-the-key")
    except Exception:  # noqa: BLE001 - a refusal, whatever its words, is the expected outcome
        return
    await bad.close()
    raise AssertionError("a wrong password was accepted")


async def check_select_db1(c) -> None:
    if CLUSTER:
        raise Skip("a cluster has db 0 only")
    expect(await c.select(1), "OK")
    expect(await c.select(0), "OK")


async def check_config_get(c) -> None:
    out = await c.config_get(["maxmemory-policy"])
    if isinstance(out, dict) and not CLUSTER:
        assert b"maxmemory-policy" in out, out


class Skip(Exception):
    pass


CHECKS: dict[str, Callable[..., Awaitable[None]]] = {
    name.removeprefix("check_"): f for name, f in list(globals().items()) if name.startswith("check_")
}


def record(name: str, outcome: str, message: str = "") -> None:
    with open(RESULTS, "a") as f:
        f.write(json.dumps({"nodeid": name, "when": "call", "outcome": outcome, "message": message}) + "\n")


async def main() -> int:
    c = await connect()
    for name, check in CHECKS.items():
        start = time.monotonic()
        try:
            await asyncio.wait_for(check(c), 15)
        except Skip as e:
            record(name, "skipped", str(e))
        except BaseException as e:  # noqa: BLE001 - every error is the check's result
            record(name, "failed", f"{type(e).__name__}: {e}"[:500])
            await c.close()
            c = await connect()  # a failed check may leave the connection in any state
        else:
            record(name, "passed")
        print(f"{name}: {time.monotonic() - start:.2f}s", file=sys.stderr)
    await c.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
