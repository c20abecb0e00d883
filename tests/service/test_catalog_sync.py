"""ingest/catalog_sync.py on both backends: full sync from a bulk JSONL export (a file, or a
BulkExportClient replaying a recorded export) and from a product CSV export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

from conftest import new_shop_domain
from support.shopify import lines

from ingest.catalog_sync import import_bulk, import_bulk_from, import_csv
from ingest.records import Collection, Product, Variant
from ingest.stores.base import Stores

TEE = "7100000000001"
SMART = Collection(
    id="450000000001",
    handle="t-shirts",
    title="Tees (smart)",
    kind="smart",
    rules=(("type", "equals", "T-Shirt"),),
)


class RecordedExport:
    """A BulkExportClient replaying a recorded export, as a finished bulk operation would."""

    def __init__(self, recorded: list[str]) -> None:
        self.recorded = recorded
        self.asked: list[str] = []

    async def export_lines(self, shop_id: str) -> AsyncIterator[str]:
        self.asked.append(shop_id)
        for line in self.recorded:
            yield line


async def test_bulk_file_imports_products_collections_and_reports_bad_lines(
    stores: Stores,
) -> None:
    shop = new_shop_domain()
    before = (await stores.versions.get(shop)).get("catalog", 0)
    report = await import_bulk(stores, shop, lines("bulk_products.jsonl"))
    assert (report.products, report.collections, report.stale, report.not_in_export) == (3, 2, 0, 0)
    assert [s.split(":")[0] for s in report.skipped] == ["line 8", "line 12"]
    stored = {p.id: p for p in await stores.catalog.list_products(shop)}
    assert sorted(stored) == [TEE, "7100000000002", "7100000000003"]
    assert stored[TEE].collections == ("450000000001", "450000000002")
    assert stored[TEE].variants[0].price == Decimal("19.99")
    assert {c.id for c in await stores.catalog.list_collections(shop)} == {
        "450000000001",
        "450000000002",
    }
    # Stock is found by inventory item (inventory_levels/update needs this).
    found = await stores.catalog.variant_of_inventory_item(shop, "49000000000012")
    assert found == (TEE, "42000000000012")
    assert (await stores.versions.get(shop))["catalog"] > before
    assert "imported 3 products and 2 collections" in report.summary()


async def test_bulk_from_a_client_imports_the_same(stores: Stores) -> None:
    shop = new_shop_domain()
    client = RecordedExport(lines("bulk_products.jsonl"))
    report = await import_bulk_from(stores, shop, client)
    assert client.asked == [shop]
    assert (report.products, report.collections, len(report.skipped)) == (3, 2, 2)
    assert len(await stores.catalog.list_products(shop)) == 3


async def test_bulk_keeps_a_known_smart_collections_rules(stores: Stores) -> None:
    shop = new_shop_domain()
    await stores.catalog.upsert_collections(shop, [SMART])
    await import_bulk(stores, shop, lines("bulk_products.jsonl"))
    collections = {c.id: c for c in await stores.catalog.list_collections(shop)}
    # The export's handle and title, Nova's rules and kind.
    assert collections["450000000001"] == SMART.model_copy(update={"title": "T-Shirts"})
    assert collections["450000000002"].kind == "custom"


async def test_bulk_never_replaces_a_newer_product(stores: Stores) -> None:
    shop = new_shop_domain()
    newer = Product(
        id=TEE,
        title="Renamed by a webhook after the export",
        handle="classic-black-t-shirt",
        updated_at=datetime(2026, 11, 25, tzinfo=UTC),
        variants=(Variant(id="42000000000011", price=Decimal("9")),),
    )
    extra = Product(id="99", title="Only in Nova", handle="only-in-nova")
    await stores.catalog.upsert_products(shop, [newer, extra])
    report = await import_bulk(stores, shop, lines("bulk_products.jsonl"))
    assert (report.products, report.stale, report.not_in_export) == (2, 1, 1)
    stored = await stores.catalog.get_products(shop, [TEE, "99"])
    assert stored[TEE] == newer
    assert "99" in stored  # reported, not deleted


async def test_csv_import_keeps_ids_and_applies_smart_rules(stores: Stores) -> None:
    shop = new_shop_domain()
    await import_bulk(stores, shop, lines("bulk_products.jsonl"))
    organic = Collection(
        id="450000000010",
        handle="organic",
        title="Organic",
        kind="smart",
        rules=(("tag", "equals", "organic"),),
    )
    await stores.catalog.upsert_collections(shop, [organic])
    report = await import_csv(stores, shop, lines("products_export.csv"))
    assert (report.products, report.stale) == (3, 0)
    assert report.skipped == ["row 9: no Handle", "broken-price: not a price: 'twelve'"]
    # The bulk export's products without a row in this CSV are reported.
    assert report.not_in_export == 1
    by_handle = {p.handle: p for p in await stores.catalog.list_products(shop)}
    tee = by_handle["classic-black-t-shirt"]
    assert tee.id == TEE and not tee.provisional
    assert tee.tags == ("organic", "summer", "bestseller")
    # Custom memberships from the export stay; the smart one follows the new tags.
    assert tee.collections == ("450000000001", "450000000002", "450000000010")
    assert [v.id for v in tee.variants][:2] == ["42000000000011", "42000000000012"]
    assert tee.variants[0].inventory_quantity == 5  # the CSV has no stock; the known one stays
    # The gift card was known by handle; the tote was not: provisional until Shopify's id comes.
    assert by_handle["gift-card"].id == "7100000000003"
    assert by_handle["new-canvas-tote"].id == "handle:new-canvas-tote"
    assert by_handle["new-canvas-tote"].provisional


async def test_provisional_product_is_replaced_when_the_export_brings_its_id(
    stores: Stores,
) -> None:
    shop = new_shop_domain()
    await import_csv(stores, shop, lines("products_export.csv"))
    assert "handle:classic-black-t-shirt" in {
        p.id for p in await stores.catalog.list_products(shop)
    }
    report = await import_bulk(stores, shop, lines("bulk_products.jsonl"))
    ids = {p.id for p in await stores.catalog.list_products(shop)}
    assert TEE in ids and "handle:classic-black-t-shirt" not in ids
    assert "handle:gift-card" not in ids
    assert report.not_in_export == 1  # the tote: only in the CSV
