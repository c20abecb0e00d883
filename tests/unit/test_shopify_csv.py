"""ingest/shopify/csv_export.py: Shopify's product CSV export (one row per variant, image-only
rows, product fields on the first row), matched to known products by handle."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support.shopify import lines

from ingest.records import Product, Variant
from ingest.shopify.csv_export import PROVISIONAL_PREFIX, parse_csv


def imported(known: dict[str, Product] | None = None) -> dict[str, Product]:
    result = parse_csv(lines("products_export.csv"), known or {})
    return {p.handle: p for p in result.products}


def test_unknown_products_are_provisional_with_rows_grouped_by_handle() -> None:
    result = parse_csv(lines("products_export.csv"), {})
    by_handle = {p.handle: p for p in result.products}
    assert sorted(by_handle) == ["classic-black-t-shirt", "gift-card", "new-canvas-tote"]
    tee = by_handle["classic-black-t-shirt"]
    assert tee.provisional and tee.id == PROVISIONAL_PREFIX + "classic-black-t-shirt"
    assert (tee.title, tee.vendor, tee.product_type) == (
        "Classic Black T-Shirt",
        "Northwind",
        "T-Shirt",
    )
    assert tee.tags == ("organic", "summer", "bestseller")
    assert tee.status == "active" and tee.published
    # Three variant rows; the fourth row carries only an image.
    assert [v.option_values for v in tee.variants] == [
        ("S", "Black"),
        ("M", "Black"),
        ("L", "Black"),
    ]
    assert [v.title for v in tee.variants] == ["S / Black", "M / Black", "L / Black"]
    assert [v.sku for v in tee.variants] == ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L"]
    assert [v.price for v in tee.variants] == [Decimal("19.99"), Decimal("19.99"), Decimal("21.99")]
    assert tee.variants[0].compare_at_price == Decimal("24.99")
    assert [v.id for v in tee.variants] == [f"handle:classic-black-t-shirt:{n}" for n in (1, 2, 3)]
    # The export carries no stock: a tracked "deny" variant is not known to be sellable, a
    # "continue" one is.
    assert [v.available for v in tee.variants] == [False, False, True]
    assert tee.image_url == "https://cdn.shopify.com/s/files/1/0001/products/black-tee.jpg?v=1"


def test_draft_unpublished_untracked_and_gift_card_rows() -> None:
    by_handle = imported()
    tote = by_handle["new-canvas-tote"]
    assert tote.status == "draft" and tote.published_at is None and tote.tags == ()
    [variant] = tote.variants
    assert variant.option_values == ("Default Title",) and not variant.tracked and variant.available
    assert by_handle["gift-card"].is_gift_card


def test_bad_rows_are_reported_and_the_rest_imported() -> None:
    result = parse_csv(lines("products_export.csv"), {})
    assert result.skipped == ["row 9: no Handle", "broken-price: not a price: 'twelve'"]


def test_known_product_keeps_shopify_ids_stock_collections_and_dates() -> None:
    created = datetime(2026, 9, 30, 12, tzinfo=UTC)
    known = Product(
        id="7100000000001",
        title="Old title",
        handle="classic-black-t-shirt",
        tags=("old",),
        collections=("450000000001",),
        published_at=datetime(2026, 10, 1, tzinfo=UTC),
        created_at=created,
        updated_at=created,
        variants=(
            Variant(
                id="42000000000011",
                sku="TEE-BLK-S",
                price=Decimal("18"),
                inventory_quantity=5,
                inventory_item_id="49000000000011",
                option_values=("S", "Black"),
            ),
            # No SKU match: found by its option values instead.
            Variant(
                id="42000000000012",
                sku="OLD-SKU",
                price=Decimal("18"),
                inventory_quantity=0,
                option_values=("M", "Black"),
            ),
        ),
    )
    tee = imported({known.handle: known})["classic-black-t-shirt"]
    assert tee.id == "7100000000001" and not tee.provisional
    assert tee.title == "Classic Black T-Shirt" and tee.tags == ("organic", "summer", "bestseller")
    assert tee.collections == ("450000000001",)
    assert (tee.created_at, tee.updated_at) == (created, created)
    assert tee.published_at == datetime(2026, 10, 1, tzinfo=UTC)
    assert [v.id for v in tee.variants] == [
        "42000000000011",
        "42000000000012",
        "handle:classic-black-t-shirt:3",
    ]
    assert [v.inventory_quantity for v in tee.variants] == [5, 0, None]
    assert [v.available for v in tee.variants] == [True, False, True]
    assert tee.variants[0].inventory_item_id == "49000000000011"


def test_id_columns_added_by_export_apps_are_used() -> None:
    rows = [
        "Handle,ID,Title,Variant ID,Variant Price,Option1 Value,Variant Inventory Tracker\n",
        "mug,gid://shopify/Product/77,Mug,gid://shopify/ProductVariant/770,8.00,Default Title,\n",
    ]
    [mug] = parse_csv(rows, {}).products
    assert (mug.id, mug.provisional, mug.variants[0].id) == ("77", False, "770")


def test_byte_order_mark_is_ignored() -> None:
    rows = lines("products_export.csv")
    rows[0] = "\ufeff" + rows[0]
    assert len(parse_csv(rows, {}).products) == 3


def test_a_file_that_is_not_a_product_export_is_refused() -> None:
    with pytest.raises(ValueError, match="Handle"):
        parse_csv(["Name,Price\n", "x,1\n"], {})
    with pytest.raises(ValueError, match="Handle"):
        parse_csv([], {})
