"""ingest/shopify/bulk.py: a bulk-operation JSONL export (recorded shape) into products and
collections; lines in any order; bad lines reported, never fatal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from support.shopify import lines

from ingest.records import Collection
from ingest.shopify.bulk import BULK_PRODUCTS_QUERY, parse_export


def test_export_becomes_products_with_variants_and_collections() -> None:
    export = parse_export(lines("bulk_products.jsonl"))
    by_id = {p.id: p for p in export.products}
    assert sorted(by_id) == ["7100000000001", "7100000000002", "7100000000003"]

    tee = by_id["7100000000001"]
    assert (tee.title, tee.handle, tee.vendor, tee.product_type) == (
        "Classic Black T-Shirt",
        "classic-black-t-shirt",
        "Northwind",
        "T-Shirt",
    )
    assert tee.tags == ("organic", "summer")
    assert tee.collections == ("450000000001", "450000000002")
    assert tee.status == "active" and tee.published
    assert tee.updated_at == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert tee.image_url == "https://cdn.shopify.com/s/files/1/0001/products/black-tee.jpg?v=1"
    small, medium = tee.variants
    assert (small.id, small.sku, small.price, small.compare_at_price) == (
        "42000000000011",
        "TEE-BLK-S",
        Decimal("19.99"),
        Decimal("24.99"),
    )
    assert small.inventory_item_id == "49000000000011" and small.option_values == ("S",)
    assert (small.available, medium.available) == (True, False)
    assert medium.inventory_policy == "deny" and medium.tracked

    assert set(export.collections) == {
        Collection(id="450000000001", handle="t-shirts", title="T-Shirts"),
        Collection(id="450000000002", handle="summer", title="Summer"),
    }


def test_a_variant_line_before_its_product_still_belongs_to_it() -> None:
    backpack = {p.id: p for p in parse_export(lines("bulk_products.jsonl")).products}[
        "7100000000002"
    ]
    [variant] = backpack.variants
    assert variant.id == "42000000000021" and variant.sku is None
    # Sold out but "continue selling": still available, as on Shopify.
    assert variant.inventory_policy == "continue" and variant.available
    assert backpack.collections == () and backpack.image_url is None


def test_gift_card_draft_and_untracked_variant() -> None:
    gift = {p.id: p for p in parse_export(lines("bulk_products.jsonl")).products}["7100000000003"]
    assert gift.is_gift_card and gift.status == "draft" and gift.published_at is None
    [variant] = gift.variants
    assert not variant.tracked and variant.available and variant.inventory_quantity is None


def test_malformed_and_orphan_lines_are_reported_with_their_numbers() -> None:
    export = parse_export(lines("bulk_products.jsonl"))
    assert len(export.skipped) == 2
    malformed, orphan = export.skipped
    assert malformed.startswith("line 8: not a JSON object")
    assert orphan == "line 12: its product gid://shopify/Product/7100000000099 is not in the export"
    # The malformed line was gift card's only collection membership: nothing invented.
    gift = {p.id: p for p in export.products}["7100000000003"]
    assert gift.collections == ()


def test_a_bad_product_is_skipped_and_the_rest_imported() -> None:
    good = lines("bulk_products.jsonl")
    bad_variant = json.dumps(
        {
            "id": "gid://shopify/ProductVariant/5",
            "price": "-3",
            "__parentId": "gid://shopify/Product/7100000000002",
        }
    )
    stray = json.dumps({"id": "gid://shopify/Customer/1"})
    export = parse_export([*good, bad_variant, stray, "[1, 2]"])
    assert sorted(p.id for p in export.products) == ["7100000000001", "7100000000003"]
    assert any(s.startswith("product gid://shopify/Product/7100000000002:") for s in export.skipped)
    assert any(s == "line 14: unexpected Customer node" for s in export.skipped)
    assert any(s.startswith("line 15: not a JSON object") for s in export.skipped)


def test_order_of_lines_does_not_matter() -> None:
    forward = parse_export(lines("bulk_products.jsonl"))
    backward = parse_export(list(reversed(lines("bulk_products.jsonl"))))
    # Variants keep Shopify's positions; collections are a set.
    unordered = [
        p.model_copy(update={"collections": tuple(sorted(p.collections))})
        for p in backward.products
    ]
    assert sorted(forward.products, key=lambda p: p.id) == sorted(unordered, key=lambda p: p.id)
    assert [v.id for v in forward.products[0].variants] == ["42000000000011", "42000000000012"]


def test_empty_export() -> None:
    export = parse_export([])
    assert (export.products, export.collections, export.skipped) == ([], [], [])


def test_query_asks_for_every_field_the_parser_reads() -> None:
    fields = (
        "productType",
        "publishedAt",
        "isGiftCard",
        "featuredImage",
        "compareAtPrice",
        "inventoryQuantity",
        "inventoryPolicy",
        "tracked",
        "selectedOptions",
        "collections",
    )
    assert all(f in BULK_PRODUCTS_QUERY for f in fields)
