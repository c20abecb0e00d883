"""Recomputing a shop's co-occurrence statistics from its events (the neighbour tables the
related, complementary, frequently-bought-together and personalized intents start from)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from deployments.ranking.cooccurrence import compute
from ingest.stores.base import Stores

# kind -> (basket kind in the event store, measure)
TABLES = {
    "co_view": ("view", "cosine"),
    "co_cart": ("cart", "cosine"),
    "co_purchase": ("purchase", "npmi"),
}


@dataclass(frozen=True)
class Refreshed:
    kind: str
    baskets: int
    products: int
    pairs: int
    seconds: float


async def refresh_stats(
    stores: Stores, shop_id: str, now: datetime, *, window_days: int = 90, min_support: int = 2
) -> list[Refreshed]:
    out = []
    since = now - timedelta(days=window_days)
    for kind, (basket_kind, measure) in TABLES.items():
        started = time.perf_counter()
        pairs = await stores.events.basket_items(shop_id, basket_kind, since)
        table = compute(kind, pairs, measure=measure, min_support=min_support)
        await stores.stats.save_stats(shop_id, kind, table.to_bytes(), now)
        out.append(
            Refreshed(
                kind,
                table.baskets,
                len(table.product_ids),
                len(table.neighbours),
                time.perf_counter() - started,
            )
        )
    return out
