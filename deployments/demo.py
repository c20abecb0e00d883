"""`make demo`: the whole product on a laptop, fed by simulated shoppers through real HTTP."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from config.settings import Settings, load_settings
from deployments import runtime
from deployments.simulate import Shopper, generate_catalog
from ingest import shops
from ingest.errors import ShopExists
from ingest.records import Shop
from ingest.stores import open_stores

DEMO_SHOP = "nova-demo.myshopify.com"
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


async def prepare_shop(settings: Settings, n_products: int) -> Shop:
    """Create (or reuse) the demo shop and load its generated catalog."""
    stores = await open_stores(settings)
    try:
        try:
            shop = await shops.create_shop(stores.shops, DEMO_SHOP, now=datetime.now(UTC))
        except ShopExists:
            found = await stores.shops.get_shop(DEMO_SHOP)
            assert found is not None
            shop = found
        catalog = generate_catalog(n_products)
        await stores.catalog.upsert_products(shop.shop_id, catalog.products)
        return shop
    finally:
        await stores.close()


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
        catalog = {p.id: p.title for p in await stores.catalog.list_products(shop_id)}
        trending = await stores.popularity.top(shop_id, "view", "day", 5, datetime.now(UTC))
        return {
            "total": await stores.events.count(shop_id),
            "by_name": counts,
            "trending": [(catalog.get(pid, pid), round(score, 1)) for pid, score in trending],
        }
    finally:
        await stores.close()


def run(
    visitors: int = 400, products: int = 300, *, stay: bool = True, dashboard: bool = True
) -> int:
    settings = load_settings()
    if settings.operator_token is None:
        settings = load_settings(operator_token=secrets.token_urlsafe(16))
    print(f"Starting Nova Pixel ({settings.backend.value} backend) ...", flush=True)
    running = runtime.start(settings, dashboard=dashboard)
    try:
        shop = asyncio.run(prepare_shop(settings, products))
        batches = list(Shopper(shop.shop_id, generate_catalog(products)).batches(visitors))
        print(
            f"Sending {sum(len(b['events']) for b in batches)} events from {visitors} simulated "
            f"shoppers in {len(batches)} requests to {running.api_url}/v1/events ...",
            flush=True,
        )
        started = time.perf_counter()
        sent = asyncio.run(send(running.api_url, shop.ingest_key, batches))
        elapsed = time.perf_counter() - started
        persisted = sent.by_state["guest"] + sent.by_state["authenticated"]
        summary = asyncio.run(stored_summary(settings, shop.shop_id, persisted))
        _print_report(settings, running, shop, sent, elapsed, summary)
        if stay:
            print("\nServing until Ctrl-C.", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        runtime.stop()
    return 0


def _print_report(
    settings: Settings,
    running: runtime.Running,
    shop: Shop,
    sent: Sent,
    elapsed: float,
    summary: dict[str, Any],
) -> None:
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    lines = [
        "",
        "Nova Pixel is running",
        f"  API base URL        {running.api_url}",
        f"  Events endpoint     POST {running.api_url}/v1/events",
        f"  Admin API           {running.api_url}/admin/shops  (Authorization: Bearer {token})",
        f"  Ray dashboard       {running.dashboard_url or 'disabled'}",
        f"  Applications        {', '.join(running.applications)}",
        "",
        f"Demo shop {shop.shop_id}, ingest key {shop.ingest_key}",
        f"  sent {sent.requests} requests in {elapsed:.1f}s, statuses {dict(sent.statuses)}",
        f"  accepted {sent.accepted}, duplicate {sent.duplicate}, rejected {sent.rejected}",
        "  accepted by privacy state: "
        + ", ".join(f"{k} {v}" for k, v in sorted(sent.by_state.items())),
        "",
        f"In the event store now: {summary['total']} events for this shop",
        *(f"  {name:<28}{count}" for name, count in summary["by_name"].items()),
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
