"""How long a new database takes to serve: PUT database -> first PING through the TLS gateway.

Starts a private amr (tests/integration/amr_service.py's AmrService), creates a resource group and a
Balanced_B0 cache with high availability over the raw HTTPS API, then TRIALS times: PUT the `default`
database (Encrypted, OSSCluster, access keys enabled), time until a redis-py PING over TLS on its port
succeeds and until its long-running operation reports Succeeded, then DELETE it and wait for the delete.

Run with `make bench` or `.venv/bin/python bench/provision.py`.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.amr_service import AmrService  # noqa: E402

TRIALS = 5
TARGET_S = 1.0
CACHE_API = {"api-version": "2025-07-01"}
GROUP_API = {"api-version": "2024-03-01"}
PING_INTERVAL = 0.005
LRO_INTERVAL = 0.02
TIMEOUT = 60.0


def wait_lro(http: httpx.Client, url: str, interval: float = LRO_INTERVAL) -> dict[str, Any]:
    """Poll an Azure-AsyncOperation URL until it is done; return the final status document."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        body = http.get(url).json()
        if body.get("status") in ("Succeeded", "Failed", "Canceled"):
            return body
        time.sleep(interval)
    raise TimeoutError(f"operation {url} did not finish within {TIMEOUT:g} s")


def wait_location(http: httpx.Client, url: str) -> None:
    """Poll a Location URL until it stops answering 202."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        r = http.get(url)
        if r.status_code != 202:
            r.raise_for_status()
            return
        time.sleep(LRO_INTERVAL)
    raise TimeoutError(f"operation {url} did not finish within {TIMEOUT:g} s")


def ping_once(port: int, key: str, ca_file: str, command: tuple[str, ...] = ("PING",)) -> bool:
    client = redis.Redis(
        "localhost", port, password=key, ssl=True, ssl_ca_certs=ca_file, socket_timeout=1, retry=None
    )
    try:
        return bool(client.execute_command(*command))
    except redis.RedisError:
        return False
    finally:
        client.close()


def poll(port: int, key: str, ca_file: str, t0: float, command: tuple[str, ...]) -> float:
    """Seconds from t0 until ``command`` succeeds on the database port."""
    while not ping_once(port, key, ca_file, command):
        if time.monotonic() > t0 + TIMEOUT:
            raise TimeoutError(f"{command[0]} on port {port} did not succeed within {TIMEOUT:g} s")
        time.sleep(PING_INTERVAL)
    return time.monotonic() - t0


def trial(service: AmrService, http: httpx.Client, db_path: str) -> tuple[float, float, float]:
    """One create: seconds from the PUT to the first PING, to the first SET and to LRO Succeeded."""
    t0 = time.monotonic()
    put = http.put(
        db_path,
        params=CACHE_API,
        json={
            "properties": {
                "accessKeysAuthentication": "Enabled",
                "clientProtocol": "Encrypted",
                "clusteringPolicy": "OSSCluster",
            }
        },
    )
    put.raise_for_status()
    port = put.json()["properties"]["port"]
    lro_url = put.headers["Azure-AsyncOperation"]
    lro: dict[str, Any] = {}

    def follow_lro() -> None:
        lro["body"] = wait_lro(http, lro_url)
        lro["elapsed"] = time.monotonic() - t0

    follower = threading.Thread(target=follow_lro)
    follower.start()
    key = http.post(f"{db_path}/listKeys", params=CACHE_API).raise_for_status().json()["primaryKey"]
    ping_s = poll(port, key, service.ca_file, t0, ("PING",))
    # A fresh cluster-mode primary answers PING at once but refuses keys (CLUSTERDOWN) until its
    # cluster state turns ok, which the engine delays by up to 2 s after its start.
    set_s = poll(port, key, service.ca_file, t0, ("SET", "bench", "1"))
    follower.join(TIMEOUT)
    if lro.get("body", {}).get("status") != "Succeeded":
        raise RuntimeError(f"create did not succeed: {lro.get('body')}")

    delete = http.delete(db_path, params=CACHE_API)
    delete.raise_for_status()
    if delete.status_code == 202:
        if "Azure-AsyncOperation" in delete.headers:
            wait_lro(http, delete.headers["Azure-AsyncOperation"])
        else:
            wait_location(http, delete.headers["Location"])
    return ping_s, set_s, float(lro["elapsed"])


def main() -> int:
    service = AmrService()
    print(f"amr home {service.home}; starting ...", flush=True)
    service.start()
    try:
        http = service.http()
        group = f"/subscriptions/{service.subscription}/resourcegroups/rg-bench"
        http.put(group, params=GROUP_API, json={"location": "eastus"}).raise_for_status()
        cluster = service.cluster_path("rg-bench", "bench")
        r = http.put(
            cluster,
            params=CACHE_API,
            json={
                "location": "eastus",
                "sku": {"name": "Balanced_B0"},
                "properties": {
                    "highAvailability": "Enabled",
                    "minimumTlsVersion": "1.2",
                    "publicNetworkAccess": "Enabled",
                },
            },
        )
        if r.is_error:
            raise RuntimeError(f"cache create failed: {r.status_code} {r.text}")
        if "Azure-AsyncOperation" in r.headers:
            wait_lro(http, r.headers["Azure-AsyncOperation"])
        db_path = f"{cluster}/databases/default"

        pings, sets, lros = [], [], []
        for i in range(1, TRIALS + 1):
            ping_s, set_s, lro_s = trial(service, http, db_path)
            pings.append(ping_s)
            sets.append(set_s)
            lros.append(lro_s)
            print(
                f"trial {i}: PUT->PING {ping_s:.3f} s  PUT->SET {set_s:.3f} s  PUT->Succeeded {lro_s:.3f} s",
                flush=True,
            )
        median_ping = statistics.median(pings)
        print(
            f"median: PUT->PING {median_ping:.3f} s  PUT->SET {statistics.median(sets):.3f} s  "
            f"PUT->Succeeded {statistics.median(lros):.3f} s"
        )
        verdict = "PASS" if median_ping < TARGET_S else "FAIL"
        print(f"target: median PUT->PING < {TARGET_S:.3f} s: {verdict}")
        return 0 if verdict == "PASS" else 1
    finally:
        service.destroy()


if __name__ == "__main__":
    sys.exit(main())
