"""`make demo`: the whole product on a laptop, fed by simulated shoppers through real HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from config.settings import Settings, load_settings
from deployments import demo_recs, demo_train, runtime
from deployments.simulate import Catalog, Shopper, generate_catalog
from deployments.simulate_shopify import (
    bulk_export_lines,
    collection_payload,
    collection_specs,
    order_payloads,
    product_payload,
)
from ingest import catalog_sync, shops
from ingest.errors import ShopExists
from ingest.records import Shop
from ingest.shopify.hmac_check import signature
from ingest.shopify.orders import ORDER_EVENT
from ingest.stores import open_stores

DEMO_SHOP = "nova-demo.myshopify.com"
# Enough shoppers that their orders give every model something to learn and validate on: with
# 400, the co-purchase model had 5 validation orders, tied popularity at 0 and was rejected.
DEMO_VISITORS = 1500
EVENT_NAMES = (
    "page_viewed",
    "collection_viewed",
    "search_submitted",
    "product_viewed",
    "product_added_to_cart",
    "product_removed_from_cart",
    "cart_viewed",
    "checkout_started",
    "checkout_completed",
)


@dataclass
class Sent:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    promoted: int = 0
    by_state: Counter[str] = field(default_factory=Counter)


@dataclass
class Loaded:
    """How the catalog reached Nova: signed webhooks, then a full sync of the bulk export."""

    collections: int
    products: int
    statuses: Counter[int]
    sync: catalog_sync.SyncReport


async def prepare_shop(settings: Settings) -> Shop:
    """Create (or reuse) the demo shop, as `nova shops create` would."""
    stores = await open_stores(settings)
    try:
        try:
            return await shops.create_shop(stores.shops, DEMO_SHOP, now=datetime.now(UTC))
        except ShopExists:
            found = await stores.shops.get_shop(DEMO_SHOP)
            assert found is not None
            return found
    finally:
        await stores.close()


async def post_webhooks(
    client: httpx.AsyncClient,
    secret: str,
    shop_id: str,
    deliveries: Iterable[tuple[str, dict[str, Any]]],
    concurrency: int = 4,
) -> Counter[int]:
    """Deliver webhooks as Shopify does: the JSON body signed with the app's client secret,
    one delivery id each, a few at a time. Returns the statuses."""
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for delivery in deliveries:
        queue.put_nowait(delivery)

    async def worker() -> None:
        while not queue.empty():
            topic, payload = queue.get_nowait()
            body = json.dumps(payload).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": shop_id,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Hmac-Sha256": signature(secret.encode(), body),
            }
            response = await client.post("/webhooks", content=body, headers=headers)
            statuses[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def load_catalog(
    client: httpx.AsyncClient, settings: Settings, shop_id: str, catalog: Catalog
) -> Loaded:
    """The generated catalog through the paths a real shop's takes: collections/create and
    products/create webhooks (smart collections' members follow their rules), then a full sync
    of the shop's bulk export, which brings the custom collections' members."""
    statuses = await post_catalog(client, settings, shop_id, catalog)
    sync = await sync_catalog(settings, shop_id, catalog)
    return Loaded(len(catalog.collections), len(catalog.products), statuses, sync)


async def post_catalog(
    client: httpx.AsyncClient, settings: Settings, shop_id: str, catalog: Catalog
) -> Counter[int]:
    assert settings.shopify_api_secret is not None
    secret = settings.shopify_api_secret.get_secret_value()
    now = datetime.now(UTC)
    collections = [
        ("collections/create", collection_payload(s, now)) for s in collection_specs(catalog)
    ]
    # Collections first: a product's smart memberships are decided when it arrives.
    statuses = await post_webhooks(client, secret, shop_id, collections)
    products = [("products/create", product_payload(p)) for p in catalog.products]
    return statuses + await post_webhooks(client, secret, shop_id, products)


async def sync_catalog(
    settings: Settings, shop_id: str, catalog: Catalog
) -> catalog_sync.SyncReport:
    """What `nova catalog sync --jsonl` does with the shop's bulk export."""
    stores = await open_stores(settings, migrate=False)
    try:
        return await catalog_sync.import_bulk(stores, shop_id, bulk_export_lines(catalog))
    finally:
        await stores.close()


async def load_through_http(
    api_url: str, settings: Settings, shop_id: str, catalog: Catalog
) -> Loaded:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        return await load_catalog(client, settings, shop_id, catalog)


async def post_orders(
    api_url: str, settings: Settings, shop_id: str, batches: Iterable[dict[str, Any]]
) -> Counter[int]:
    """An orders/create webhook for every completed checkout, as Shopify sends them."""
    assert settings.shopify_api_secret is not None
    secret = settings.shopify_api_secret.get_secret_value()
    orders = [("orders/create", order) for order in order_payloads(batches)]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        return await post_webhooks(client, secret, shop_id, orders)


async def send(
    api_url: str, key: str, batches: Iterable[dict[str, Any]], concurrency: int = 4
) -> Sent:
    """POST every batch to /v1/events, a few at a time, like many browsers would."""
    sent = Sent()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/v1/events", json=body, headers={"X-Nova-Key": key})
                sent.requests += 1
                sent.statuses[response.status_code] += 1
                if response.status_code == 202:
                    answer = response.json()
                    sent.accepted += answer["accepted"]
                    sent.duplicate += answer["duplicate"]
                    sent.rejected += answer["rejected"]
                    sent.by_state[answer["privacy_state"]] += answer["accepted"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


async def stored_summary(settings: Settings, shop_id: str, expect_at_least: int) -> dict[str, Any]:
    """What is in the stores now; on the production backend, after the writer caught up."""
    stores = await open_stores(settings, migrate=False)
    try:
        deadline = time.monotonic() + 60
        # Polling another process's writes: there is no event to wait on.
        while time.monotonic() < deadline:
            if await stores.events.count(shop_id) >= expect_at_least:
                break
            await asyncio.sleep(0.5)
        counts = {name: await stores.events.count(shop_id, name) for name in EVENT_NAMES}
        orders = await stores.events.count(shop_id, ORDER_EVENT)
        products = await stores.catalog.list_products(shop_id)
        catalog = {p.id: p.title for p in products}
        trending = await stores.popularity.top(shop_id, "view", "day", 5, datetime.now(UTC))
        return {
            "total": await stores.events.count(shop_id) - orders,
            "by_name": counts,
            "orders": orders,
            "products": len(products),
            "collections": len(await stores.catalog.list_collections(shop_id)),
            "trending": [(catalog.get(pid, pid), round(score, 1)) for pid, score in trending],
        }
    finally:
        await stores.close()


def run(
    visitors: int = DEMO_VISITORS,
    products: int = 300,
    *,
    stay: bool = True,
    dashboard: bool = True,
    training_workers: int = 2,
) -> int:
    settings = load_settings()
    generated: dict[str, Any] = {}
    if settings.operator_token is None:
        generated["operator_token"] = secrets.token_urlsafe(16)
    if settings.shopify_api_secret is None:
        # The demo plays Shopify too, so it picks the app secret both sides use.
        generated["shopify_api_secret"] = "shpss_" + secrets.token_hex(16)
    if generated:
        settings = load_settings(**generated)
    print(f"Starting Nova Pixel ({settings.backend.value} backend) ...", flush=True)
    running = runtime.start(settings, dashboard=dashboard)
    try:
        shop = asyncio.run(prepare_shop(settings))
        catalog = generate_catalog(products)
        print(
            f"Loading {len(catalog.products)} products through signed Shopify webhooks to "
            f"{running.api_url}/webhooks and a bulk-export sync ...",
            flush=True,
        )
        loaded = asyncio.run(load_through_http(running.api_url, settings, shop.shop_id, catalog))
        batches = list(Shopper(shop.shop_id, catalog).batches(visitors))
        print(
            f"Sending {sum(len(b['events']) for b in batches)} events from {visitors} simulated "
            f"shoppers in {len(batches)} requests to {running.api_url}/v1/events ...",
            flush=True,
        )
        started = time.perf_counter()
        sent = asyncio.run(send(running.api_url, shop.ingest_key, batches))
        elapsed = time.perf_counter() - started
        orders = asyncio.run(post_orders(running.api_url, settings, shop.shop_id, batches))
        persisted = sent.by_state["guest"] + sent.by_state["authenticated"]
        summary = asyncio.run(
            stored_summary(settings, shop.shop_id, persisted + orders.get(200, 0))
        )
        _print_report(settings, running, shop, loaded, sent, elapsed, orders, summary)
        print(demo_recs.refresh_stats(running.api_url, settings, shop.shop_id), flush=True)
        print(
            demo_train.train(running.api_url, settings, shop.shop_id, training_workers),
            flush=True,
        )
        print(demo_recs.show(running.api_url, settings, shop.shop_id, catalog, batches), flush=True)
        if stay:
            runtime.serve_until_stopped("\nServing until Ctrl-C.")
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        runtime.stop()
    return 0


def _print_report(
    settings: Settings,
    running: runtime.Running,
    shop: Shop,
    loaded: Loaded,
    sent: Sent,
    elapsed: float,
    orders: Counter[int],
    summary: dict[str, Any],
) -> None:
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    lines = [
        "",
        "Nova Pixel is running",
        f"  API base URL        {running.api_url}",
        f"  Events endpoint     POST {running.api_url}/v1/events",
        f"  Admin API           {running.api_url}/admin/shops  (Authorization: Bearer {token})",
        f"  Shopify webhooks    POST {running.api_url}/webhooks  (signed with the app secret)",
        f"  Ray dashboard       {running.dashboard_url or 'disabled'}",
        f"  Applications        {', '.join(running.applications)}",
        "",
        f"Demo shop {shop.shop_id}, ingest key {shop.ingest_key}",
        f"  catalog: {loaded.collections} collections and {loaded.products} products sent as "
        f"webhooks, statuses {dict(loaded.statuses)}",
        f"  bulk-export sync: {loaded.sync.summary()}",
        f"  in the catalog now: {summary['products']} products, "
        f"{summary['collections']} collections",
        f"  events: sent {sent.requests} requests in {elapsed:.1f}s, "
        f"statuses {dict(sent.statuses)}",
        f"  accepted {sent.accepted}, duplicate {sent.duplicate}, rejected {sent.rejected}",
        "  accepted by privacy state: "
        + ", ".join(f"{k} {v}" for k, v in sorted(sent.by_state.items())),
        f"  orders: {sum(orders.values())} orders/create webhooks for the completed checkouts, "
        f"statuses {dict(orders)}",
        "",
        f"In the event store now: {summary['total']} pixel events for this shop",
        *(f"  {name:<28}{count}" for name, count in summary["by_name"].items()),
        f"  and {summary['orders']} orders from orders/create (anonymous baskets)",
        "Trending today (views, time-decayed):",
        *(f"  {title:<40}{score}" for title, score in summary["trending"]),
        "",
        "Try it:",
        f"  curl -s -X POST '{running.api_url}/v1/events?key={shop.ingest_key}' -H 'Content-Type: "
        f'text/plain\' --data \'{{"shop": "{shop.shop_id}", "consent": {{"analytics": true}}, '
        f'"events": [{{"id": "demo-1", "name": "page_viewed", "timestamp": '
        f'"{datetime.now(UTC).isoformat()}", "clientId": "curl"}}]}}\'',
    ]
    print("\n".join(lines), flush=True)
