"""deployments/simulate_shopify.py: the simulated catalog and checkouts in Shopify's shapes,
read back by Nova's own parsers into exactly what was generated."""

from __future__ import annotations

from datetime import UTC, datetime

from deployments.simulate import Shopper, generate_catalog
from deployments.simulate_shopify import (
    bulk_export_lines,
    collection_payload,
    collection_specs,
    order_payloads,
    product_payload,
)
from ingest.shopify.bulk import parse_export
from ingest.shopify.orders import order_event
from ingest.shopify.products import collection_from_rest, matches, product_from_rest

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CATALOG = generate_catalog(300, now=NOW)


def test_generated_variants_follow_shopifys_availability_rule() -> None:
    variants = [v for p in CATALOG.products for v in p.variants]
    assert all(
        v.available == (v.inventory_policy == "continue" or bool(v.inventory_quantity))
        for v in variants
    )
    assert any(v.inventory_policy == "continue" and v.inventory_quantity == 0 for v in variants)
    assert len({v.inventory_item_id for v in variants}) == len(variants)


def test_rest_product_payload_reads_back_as_the_generated_product() -> None:
    for p in CATALOG.products:
        payload = product_payload(p)
        assert isinstance(payload["tags"], str) and isinstance(payload["variants"][0]["price"], str)
        assert product_from_rest(payload, collections=p.collections) == p


def test_bulk_export_reads_back_as_the_generated_catalog() -> None:
    export = parse_export(bulk_export_lines(CATALOG))
    assert export.skipped == []
    assert export.products == CATALOG.products
    assert {c.id for c in export.collections} == set(CATALOG.collections.values())


def test_smart_collections_select_exactly_the_generated_members() -> None:
    specs = collection_specs(CATALOG)
    smart = [collection_from_rest(collection_payload(s, NOW)) for s in specs if s.rules]
    custom = [s for s in specs if not s.rules]
    assert {s.handle for s in custom} == {"all", "new-arrivals"}
    assert len(smart) == len(specs) - 2 and all(c.kind == "smart" for c in smart)
    for p in CATALOG.products:
        assert {c.id for c in smart if matches(c, p)} == set(p.collections) - {s.id for s in custom}


def test_every_completed_checkout_becomes_an_order_of_its_products() -> None:
    batches = list(Shopper("nova-demo.myshopify.com", CATALOG, end=NOW).batches(150))
    checkouts = [
        e["data"]["checkout"]
        for b in batches
        for e in b["events"]
        if e["name"] == "checkout_completed"
    ]
    orders = list(order_payloads(batches))
    assert len(orders) == len(checkouts) > 0
    for checkout, order in zip(checkouts, orders, strict=True):
        event = order_event("nova-demo.myshopify.com", order)
        assert checkout["order"]["id"].endswith("/" + event.order_id)  # type: ignore[operator]
        wanted = [li["variant"]["product"]["id"].rsplit("/", 1)[1] for li in checkout["lineItems"]]
        assert [item["product_id"] for item in event.payload["items"]] == wanted
        assert order["email"] and order["shipping_address"]["address1"]  # as Shopify sends it
