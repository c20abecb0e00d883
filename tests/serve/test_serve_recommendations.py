"""End to end on a local Ray Serve cluster (production backend): the demo catalog through signed
webhooks, shopper traffic through /v1/events, statistics, a rule set and an experiment
through the admin API, then GET /v1/recommendations for every intent over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import _clear_redis_prefix
from support.tcpproxy import free_port

from config.settings import Settings, load_settings
from deployments import demo, runtime
from deployments.ranking.engine import INTENTS
from deployments.simulate import Catalog, Shopper, generate_catalog

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]
AUTH = {"Authorization": "Bearer op-token"}


class Live:
    def __init__(self, settings: Settings, api: str) -> None:
        self.settings, self.api = settings, api
        self.client = httpx.Client(base_url=api, timeout=60)


@pytest.fixture(scope="module")
def live(postgres_url: str, redis_url: str) -> Iterator[Live]:
    prefix = f"novatest-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {
            "NOVA_DATABASE_URL": postgres_url,
            "NOVA_REDIS_URL": redis_url,
            "NOVA_REDIS_PREFIX": prefix,
            "NOVA_OPERATOR_TOKEN": "op-token",
            "NOVA_SHOPIFY_API_SECRET": "shpss_test_secret",
            "NOVA_HTTP_PORT": str(free_port()),
            # Answers are cached for a few seconds; rule changes must show at once here.
            "NOVA_RECS_CACHE_TTL_S": "0",
        }
    )
    running = runtime.start(
        settings, dashboard=False, num_cpus=2, object_store_memory=200 * 1024**2
    )
    live = Live(settings, running.api_url)
    try:
        yield live
    finally:
        live.client.close()
        runtime.stop()
        _clear_redis_prefix(redis_url, prefix)


def wait_until(check: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_every_intent_end_to_end_with_rules_and_an_experiment(live: Live) -> None:
    settings, client = live.settings, live.client
    shop = client.post(
        "/admin/shops", json={"shop": f"e2e-{uuid.uuid4().hex[:6]}.myshopify.com"}, headers=AUTH
    ).json()
    shop_id, key = shop["shop"], shop["ingest_key"]
    catalog: Catalog = generate_catalog(80, seed=5)
    loaded = asyncio.run(demo.load_through_http(live.api, settings, shop_id, catalog))
    assert set(loaded.statuses) == {200}

    batches = list(Shopper(shop_id, catalog, seed=9, consent_mix=(1.0, 0, 0)).batches(150))
    sent = asyncio.run(demo.send(live.api, key, batches))
    assert set(sent.statuses) == {202}
    orders = asyncio.run(demo.post_orders(live.api, settings, shop_id, batches))
    assert set(orders) <= {200}
    stored = wait_until(
        lambda: (
            asyncio.run(demo.stored_summary(settings, shop_id, sent.accepted))["total"]
            >= sent.accepted
        )
    )
    assert stored
    tables = client.post(f"/admin/shops/{shop_id}/stats/refresh", headers=AUTH).json()["tables"]
    assert {t["kind"]: t["pairs"] > 0 for t in tables} == {
        "co_view": True,
        "co_cart": True,
        "co_purchase": True,
    }

    banned = catalog.products[0].vendor
    pinned = next(
        p
        for p in catalog.products
        if p.vendor != banned and p.status == "active" and p.available and p.product_type == "Mug"
    )
    rules = {
        "rules": [
            {"type": "exclude", "field": "vendor", "values": [banned]},
            {"type": "pin", "product_id": pinned.id, "position": 1, "intents": ["trending"]},
        ]
    }
    assert client.put(f"/admin/shops/{shop_id}/rules", json=rules, headers=AUTH).status_code == 201
    experiment = {
        "id": "e2e",
        "name": "nova vs popular",
        "variants": [{"name": "nova"}, {"name": "popular", "strategy": "popular"}],
    }
    assert (
        client.post(
            f"/admin/shops/{shop_id}/experiments", json=experiment, headers=AUTH
        ).status_code
        == 201
    )
    assert (
        client.post(f"/admin/shops/{shop_id}/experiments/e2e/start", headers=AUTH).status_code
        == 200
    )

    shopper = batches[0]["events"][0]["clientId"]
    sneakers = next(
        p
        for p in catalog.products
        if p.product_type == "Sneakers"
        and p.vendor != banned
        and p.status == "active"
        and p.available
    )

    def ask(intent: str) -> httpx.Response:
        params = {"shop": shop_id, "intent": intent, "limit": 5, "client_id": shopper}
        if intent in ("related", "complementary", "frequently_bought_together"):
            params["product_id"] = sneakers.id
        return client.get("/v1/recommendations", params=params)

    # Replicas poll the shop's change counters: wait until they serve the new rules.
    assert wait_until(lambda: ask("trending").json()["products"][0]["id"] == int(pinned.id), 30)
    vendors = {p.id: p.vendor for p in catalog.products}
    for intent in INTENTS:
        r = ask(intent)
        assert r.status_code == 200, (intent, r.text)
        body = r.json()
        assert body["intent"] == intent and body["products"], intent
        assert body["variant"]["experiment"] == "e2e", intent
        ids = [str(p["id"]) for p in body["products"]]
        assert all(vendors[i] != banned for i in ids), intent
        assert sneakers.id not in ids or intent not in ("related", "complementary"), intent
        for p in body["products"]:
            assert (
                p["url"].startswith(f"/products/{p['handle']}?") and body["ranking_id"] in p["url"]
            )
            assert p["reasons"] and isinstance(p["price"], int)
    variants = {ask("related").json()["variant"]["name"]}
    assert variants <= {"nova", "popular"}
