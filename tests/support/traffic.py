"""Embedded-store shops with simulated shoppers, for the training jobs' tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from config.settings import Settings
from deployments.simulate import Catalog, Shopper
from deployments.simulate_shopify import bulk_export_lines
from ingest import catalog_sync, shops
from ingest.records import Shop
from ingest.service import IngestService
from ingest.stores import open_stores


async def simulated_shop(
    settings: Settings,
    domain: str,
    catalog: Catalog,
    visitors: int,
    *,
    seed: int = 3,
    end: datetime | None = None,
) -> Shop:
    """A shop with `catalog` and `visitors` consented shoppers' sessions over the 20 hours
    before `end` (now), stored as the ingest service stores them."""
    now = datetime.now(UTC)
    stores = await open_stores(settings)
    try:
        shop = await shops.create_shop(stores.shops, domain, now=now)
        await catalog_sync.import_bulk(stores, shop.shop_id, bulk_export_lines(catalog))
        service = IngestService(settings, stores)
        shopper = Shopper(
            shop.shop_id,
            catalog,
            seed=seed,
            end=end or now,
            span=timedelta(hours=20),
            consent_mix=(1.0, 0, 0),
        )
        for batch in shopper.batches(visitors):
            await service.ingest(batch, shop.ingest_key)
        return shop
    finally:
        await stores.close()


def make_shop(settings: Settings, domain: str, catalog: Catalog, visitors: int) -> Shop:
    return asyncio.run(simulated_shop(settings, domain, catalog, visitors))
