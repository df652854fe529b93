"""Prometheus scrapes amr: a real amr whose `amr monitord` samples every second, and a real
Prometheus (Debian's package, tests/integration/prometheus_tool.py) scraping its ``/metrics`` with
the bearer token from AMR_HOME. After a known number of hits, a PromQL query over Prometheus' HTTP
API returns the same cache hits as the metric store holds (which the Azure-shaped API reads);
promtool finds nothing wrong in a scraped body; a scrape without the token is refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest
import redis

from amr.monitor.collector import resource_of
from amr.monitor.main import STORE_FILE_NAME
from amr.monitor.prometheus import TOKEN_FILE_NAME
from amr.monitor.store import MetricStore, Series
from tests.integration.amr_service import AmrService, create_cache, running_service, wait_until
from tests.integration.prometheus_tool import PrometheusTools, ensure_prometheus, running_prometheus

HITS, MISSES = 7, 3


@pytest.fixture(scope="module")
def tools() -> PrometheusTools:
    return ensure_prometheus()


@pytest.fixture(scope="module")
def service() -> Iterator[AmrService]:
    yield from running_service({"AMR_MONITOR_SAMPLE_INTERVAL": "1"})


@pytest.fixture(scope="module")
def client(service: AmrService) -> redis.Redis:
    return create_cache(service, "pc", "Balanced_B1", "NoCluster")


def metrics_url(service: AmrService) -> str:
    return f"http://127.0.0.1:{service.prometheus_port}/metrics"


def token(service: AmrService) -> str:
    path = service.home / "monitor" / TOKEN_FILE_NAME
    wait_until(path.exists, 30, what="amr monitord makes its scrape token")
    assert path.stat().st_mode & 0o777 == 0o600
    return path.read_text().strip()


def scrape(service: AmrService, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return httpx.get(metrics_url(service), headers=headers, timeout=10)


def test_a_promql_query_returns_the_hits_the_store_holds(
    service: AmrService, client: redis.Redis, tools: PrometheusTools
) -> None:
    db = service.amr_json("redisenterprise", "database", "show", "--cluster-name", "pc", "-g", "rg")
    store = MetricStore(service.home / "monitor" / STORE_FILE_NAME)
    hits = Series(resource_of(db["id"]), "cachehits")
    token(service)
    with running_prometheus(
        tools.prometheus, f"127.0.0.1:{service.prometheus_port}", service.home / "monitor" / TOKEN_FILE_NAME
    ) as prometheus:
        for i in range(HITS):
            client.set(f"k{i}", i)
        for i in range(HITS):
            assert client.get(f"k{i}") == str(i)
        for i in range(MISSES):
            assert client.get(f"missing{i}") is None

        def stored() -> float:
            return sum(v for _, v in store.points(hits))

        # Every point since amr monitord started: what its counter adds up.
        wait_until(lambda: stored() == HITS, 30, what="the store holds the hits")
        query = 'amr_cache_hits_total{resource_group="rg",cache="pc",database="default"}'

        def scraped() -> float | None:
            result = prometheus.query(query)
            return float(result[0]["value"][1]) if result else None

        wait_until(lambda: scraped() == HITS, 30, what="Prometheus has scraped the hits")
        (series,) = prometheus.query(query)
        assert series["metric"]["job"] == "amr"
        assert float(series["value"][1]) == stored() == HITS
        misses = prometheus.query('amr_cache_misses_total{cache="pc"}')
        assert float(misses[0]["value"][1]) == MISSES
        # Prometheus found the target up, with the token.
        assert float(prometheus.query('up{job="amr"}')[0]["value"][1]) == 1
    store.close()


def test_promtool_finds_the_exposition_clean(
    service: AmrService, client: redis.Redis, tools: PrometheusTools
) -> None:
    wait_until(lambda: "amr_keys{" in scrape(service, f"Bearer {token(service)}").text, 30, what="a sample")
    body = scrape(service, f"Bearer {token(service)}")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain; version=0.0.4")
    checked = subprocess.run(
        [tools.promtool, "check", "metrics"], input=body.text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr
    )
    for family in ("amr_cache_hits_total", "amr_used_memory_bytes", "amr_node_up", "amr_connected_clients"):
        assert f"# TYPE {family} " in body.text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic x"])
def test_a_scrape_without_the_token_is_refused(service: AmrService, authorization: str | None) -> None:
    token(service)
    answer = scrape(service, authorization)
    assert answer.status_code == 401
    assert "amr_" not in answer.text
