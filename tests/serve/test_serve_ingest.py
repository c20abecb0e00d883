"""The production application on a real local Ray cluster: Serve (HAProxy ingress) in front,
PostgreSQL and Redis behind, reached through TCP proxies so the tests can cut them.

One cluster for the module (start-up costs ~10 s); tests run in file order and the outage tests
come last because they make Serve restart unhealthy replicas.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import _clear_redis_prefix, new_shop_domain
from support import pixel
from support.tcpproxy import TcpProxy, free_port

from config.settings import Settings, load_settings
from deployments import runtime
from ingest import shops
from ingest.records import Shop
from ingest.stores import open_stores

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]


class Cluster:
    def __init__(
        self,
        settings: Settings,
        direct: Settings,
        pg: TcpProxy,
        redis: TcpProxy,
        api: str,
        metrics_port: int,
    ) -> None:
        self.settings, self.direct = settings, direct
        self.pg, self.redis = pg, redis
        self.api, self.metrics_port = api, metrics_port

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _with_stores(self, fn: Any) -> Any:
        stores = await open_stores(self.direct, migrate=False)
        try:
            return await fn(stores)
        finally:
            await stores.close()

    def create_shop(self) -> Shop:
        async def _create(stores: Any) -> Shop:
            return await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))

        return self.run(self._with_stores(_create))  # type: ignore[no-any-return]

    def stored(self, shop_id: str, expect: int, timeout_s: float = 30.0) -> list[Any]:
        """Events in PostgreSQL once the writer has caught up with `expect` of them."""

        async def _read(stores: Any) -> list[Any]:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if await stores.events.count(shop_id) >= expect:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # anything beyond `expect` would arrive now
            return await stores.events.read(shop_id)  # type: ignore[no-any-return]

        return self.run(self._with_stores(_read))  # type: ignore[no-any-return]

    def post(self, body: Any, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"X-Nova-Key": key} if key else {}
        headers.update(kw.pop("headers", {}))
        return httpx.post(f"{self.api}/v1/events", json=body, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def cluster(postgres_url: str, redis_url: str) -> Iterator[Cluster]:
    pg_target, redis_target = urlsplit(postgres_url), urlsplit(redis_url)
    pg = TcpProxy(pg_target.hostname or "127.0.0.1", pg_target.port or 5432).start()
    redis = TcpProxy(redis_target.hostname or "127.0.0.1", redis_target.port or 6379).start()
    prefix = f"novatest-{uuid.uuid4().hex[:8]}"
    port, metrics_port = free_port(), free_port()
    common = {
        "NOVA_REDIS_PREFIX": prefix,
        "NOVA_OPERATOR_TOKEN": "op-token",
        "NOVA_HTTP_PORT": str(port),
        "NOVA_SHOP_CACHE_TTL_S": "1",
    }
    direct = load_settings(
        {**common, "NOVA_DATABASE_URL": postgres_url, "NOVA_REDIS_URL": redis_url}
    )
    proxied_pg = pg_target._replace(
        netloc=f"{pg_target.username or 'postgres'}@127.0.0.1:{pg.port}"
    )
    settings = load_settings(
        {
            **common,
            "NOVA_DATABASE_URL": proxied_pg.geturl(),
            "NOVA_REDIS_URL": f"redis://127.0.0.1:{redis.port}{redis_target.path or '/0'}",
        }
    )
    running = runtime.start(
        settings,
        dashboard=False,
        num_cpus=2,
        object_store_memory=200 * 1024**2,
        _metrics_export_port=metrics_port,
        _system_config={"metrics_report_interval_ms": 1000},
    )
    try:
        yield Cluster(settings, direct, pg, redis, running.api_url, metrics_port)
    finally:
        runtime.stop()
        pg.stop()
        redis.stop()
        _clear_redis_prefix(redis_url, prefix)


def test_all_applications_run_healthy(cluster: Cluster) -> None:
    from ray import serve

    status = serve.status()
    assert {"ingest", "admin", "writer"} <= set(status.applications)
    for name in ("ingest", "admin", "writer"):
        app = status.applications[name]
        assert app.status == "RUNNING", (name, app.message)
        assert all(d.status == "HEALTHY" for d in app.deployments.values())


def test_pixel_batches_land_in_postgres_as_the_contract_says(cluster: Cluster) -> None:
    shop = cluster.create_shop()
    key = shop.ingest_key
    guest = [
        pixel.product_viewed(1, client_id="g"),
        pixel.added_to_cart(1, client_id="g"),
        pixel.checkout_completed([(1, 1), (2, 1)], client_id="g", customer_id=55),
    ]
    r = cluster.post(pixel.batch(shop.shop_id, guest), key)
    assert r.status_code == 202 and r.json()["accepted"] == 3
    assert r.headers.get("access-control-allow-origin") is None  # no Origin, no CORS header
    # Replayed beacon: all duplicates, nothing stored twice.
    assert cluster.post(pixel.batch(shop.shop_id, guest), key).json()["duplicate"] == 3
    # Malformed, unknown shop, oversized.
    assert httpx.post(f"{cluster.api}/v1/events", content=b"{nope", timeout=30).status_code == 400
    assert cluster.post(pixel.batch(new_shop_domain(), guest), key).status_code == 401
    big = pixel.batch(shop.shop_id, [pixel.product_viewed(i) for i in range(1, 102)])
    assert cluster.post(big, key).status_code == 413
    # sendBeacon shape from a storefront origin.
    beacon = pixel.batch(shop.shop_id, [pixel.product_viewed(3, client_id="b")])
    r = httpx.post(
        f"{cluster.api}/v1/events?key={key}",
        content=httpx.Request("POST", "/", json=beacon).content,
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
        timeout=30,
    )
    assert r.status_code == 202 and r.headers["access-control-allow-origin"]
    # Opted out: nothing kept. Pending then consenting: promoted.
    out = [pixel.product_viewed(4, client_id="o")]
    assert cluster.post(pixel.batch(shop.shop_id, out, analytics=False), key).status_code == 202
    pending = [pixel.product_viewed(5, client_id="p")]
    assert (
        cluster.post(pixel.batch(shop.shop_id, pending, analytics=None), key).json()[
            "privacy_state"
        ]
        == "pending"
    )
    later = [pixel.product_viewed(6, client_id="p")]
    assert cluster.post(pixel.batch(shop.shop_id, later), key).json()["promoted"] == 1

    stored = cluster.stored(shop.shop_id, expect=6)
    by_client: dict[str, list[str]] = {}
    for e in stored:
        by_client.setdefault(e.client_id, []).append(e.name)
    assert sorted(by_client) == ["b", "g", "p"]
    assert len(by_client["g"]) == 3 and len(by_client["p"]) == 2
    assert len(stored) == 6
    text = repr(stored)
    assert all(value not in text for value in pixel.PII.values())


def test_ingest_and_writer_metrics_reach_prometheus(cluster: Cluster) -> None:
    shop = cluster.create_shop()
    body = pixel.batch(shop.shop_id, [pixel.product_viewed(1), {"broken": True}])
    assert cluster.post(body, shop.ingest_key).status_code == 202
    text = scrape_until(
        cluster,
        "ray_nova_ingest_events_total",
        'outcome="rejected"',
        'reason="invalid"',
        "ray_nova_ingest_batch_latency_ms_bucket",
        "ray_nova_writer_events_written_total",
        "ray_nova_ingest_buffer_entries",
    )
    accepted = series(text, "ray_nova_ingest_events_total", 'outcome="accepted"')
    assert accepted and all('deployment="Ingest"' in ln for ln in accepted)


def test_postgres_outage_keeps_ingest_accepting_and_loses_nothing(cluster: Cluster) -> None:
    from ray import serve

    shop = cluster.create_shop()
    accepted, sent = 0, 0
    with cluster.pg.outage():
        for i in range(15):
            events = [pixel.product_viewed(j, client_id=f"c{i}") for j in range(1, 21)]
            r = cluster.post(pixel.batch(shop.shop_id, events), shop.ingest_key)
            assert r.status_code == 202, r.text
            accepted += r.json()["accepted"]
            sent += len(events)
        time.sleep(1.5)
        writer = serve.get_deployment_handle("EventWriter", app_name="writer")
        stats = writer.stats.remote().result(timeout_s=30)
        assert stats["backlog_entries"] > 0 and not stats["store_up"]
    assert accepted == sent == 300
    stored = cluster.stored(shop.shop_id, expect=accepted, timeout_s=60)
    assert len(stored) == accepted
    assert len({e.event_id for e in stored}) == accepted


def test_redis_outage_answers_503_with_retry_after_then_recovers(cluster: Cluster) -> None:
    shop = cluster.create_shop()
    body = pixel.batch(shop.shop_id, [pixel.product_viewed(7)])
    from ray import serve

    with cluster.redis.outage():
        r = cluster.post(body, shop.ingest_key)
        assert r.status_code == 503
        assert int(r.headers["Retry-After"]) >= 1
        # The ingest health check pings Redis: Serve notices and replaces the replica.
        deadline, seen = time.monotonic() + 30, "HEALTHY"
        while time.monotonic() < deadline and seen == "HEALTHY":
            seen = serve.status().applications["ingest"].deployments["Ingest"].status
            time.sleep(0.5)
        assert seen != "HEALTHY"
    # Serve may be replacing replicas whose health checks failed meanwhile; the client retries.
    deadline, status = time.monotonic() + 90, 0
    while time.monotonic() < deadline:
        status = cluster.post(body, shop.ingest_key).status_code
        if status == 202:
            break
        time.sleep(1)
    assert status == 202
    assert len(cluster.stored(shop.shop_id, expect=1)) == 1


def test_recommendation_metrics_reach_prometheus_as_a_histogram(cluster: Cluster) -> None:
    shop = cluster.create_shop()
    ask = {"shop": shop.shop_id, "intent": "trending"}

    def ask_once() -> None:
        # The replica hands its sums to Ray on the first request a second after the last.
        assert httpx.get(f"{cluster.api}/v1/recommendations", params=ask).status_code == 200

    text = scrape_until(
        cluster,
        "ray_nova_recommendations_latency_ms_bucket_total{",
        'le="+Inf"',
        "ray_nova_recommendations_latency_ms_count_total{",
        "ray_nova_recommendations_latency_ms_sum_total{",
        "ray_nova_recommendations_requests_total{",
        before_each=ask_once,
    )
    trending = 'intent="trending"'
    inf = series(text, "ray_nova_recommendations_latency_ms_bucket_total{", 'le="+Inf"', trending)
    count = series(text, "ray_nova_recommendations_latency_ms_count_total{", trending)
    # Every answer is in the +Inf bucket: the two series agree.
    assert inf and count and float(inf[0].split()[-1]) == float(count[0].split()[-1]) >= 1


def scrape_until(
    cluster: Cluster, *wanted: str, before_each: Callable[[], None] | None = None
) -> str:
    """The Prometheus endpoint's text once it has every `wanted` fragment (Ray exports
    metrics every second; 40 s at most)."""
    deadline, text = time.monotonic() + 40, ""
    while time.monotonic() < deadline:
        if before_each is not None:
            before_each()
        text = httpx.get(f"http://127.0.0.1:{cluster.metrics_port}/metrics", timeout=10).text
        if all(w in text for w in wanted):
            break
        time.sleep(1)
    missing = [w for w in wanted if w not in text]
    assert not missing, missing
    return text


def series(text: str, name: str, *labels: str) -> list[str]:
    """The exposition lines of metric `name` that carry every one of `labels`."""
    return [ln for ln in text.splitlines() if ln.startswith(name) and all(t in ln for t in labels)]
