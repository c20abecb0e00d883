"""ingest/shopify/products.py: REST product and collection payloads, and smart-collection rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support.shopify import load

from ingest.records import Collection, Product, Variant
from ingest.shopify.products import (
    collection_from_rest,
    matches,
    money,
    product_from_rest,
    tags,
    variant_available,
)


def test_rest_product_payload_becomes_a_product() -> None:
    p = product_from_rest(load("products_create.json"), collections=["450000000001"])
    assert p.id == "7100000000001"
    assert (p.title, p.handle, p.vendor, p.product_type) == (
        "Classic Black T-Shirt",
        "classic-black-t-shirt",
        "Northwind",
        "T-Shirt",
    )
    assert p.tags == ("organic", "summer", "bestseller")
    assert p.collections == ("450000000001",)
    assert p.status == "active" and p.published
    assert p.published_at == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert p.updated_at == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert p.image_url == "https://cdn.shopify.com/s/files/1/0001/products/black-tee.jpg?v=1"
    assert not p.is_gift_card and not p.provisional
    small, medium = p.variants
    assert small == Variant(
        id="42000000000011",
        title="S / Black",
        sku="TEE-BLK-S",
        price=Decimal("19.99"),
        compare_at_price=Decimal("24.99"),
        available=True,
        inventory_quantity=5,
        inventory_policy="deny",
        tracked=True,
        inventory_item_id="49000000000011",
        option_values=("S", "Black"),
    )
    assert medium.available is False and medium.inventory_quantity == 0
    assert p.price == Decimal("19.99") and p.inventory == 5 and p.available


def test_first_image_stands_in_when_no_featured_image_is_named() -> None:
    payload = load("products_create.json")
    payload["image"] = None
    payload["images"].reverse()
    assert product_from_rest(payload).image_url.endswith("black-tee-back.jpg?v=1")  # type: ignore[union-attr]
    payload["images"] = []
    assert product_from_rest(payload).image_url is None


def test_unpublished_draft_and_gift_card() -> None:
    payload = load("products_create.json")
    payload.update(status="draft", published_at=None, product_type="Gift Card")
    p = product_from_rest(payload)
    assert p.status == "draft" and p.published_at is None and not p.published
    assert p.is_gift_card


def test_untracked_and_continue_selling_variants_stay_available() -> None:
    payload = load("products_create.json")
    small, medium = payload["variants"]
    small.update(inventory_management=None, inventory_quantity=0)
    medium.update(inventory_policy="continue", inventory_quantity=-3)
    p = product_from_rest(payload)
    assert [v.available for v in p.variants] == [True, True]
    assert [v.tracked for v in p.variants] == [False, True]


def test_stock_fields_absent_from_the_payload_keep_the_stored_values() -> None:
    """Newer API versions drop inventory_management/inventory_quantity from variants."""
    payload = load("products_create.json")
    stored = product_from_rest(payload)
    for v in payload["variants"]:
        del v["inventory_management"], v["inventory_quantity"], v["inventory_item_id"]
    again = product_from_rest(payload, previous=stored)
    assert [(v.tracked, v.inventory_quantity, v.available) for v in again.variants] == [
        (True, 5, True),
        (True, 0, False),
    ]
    assert [v.inventory_item_id for v in again.variants] == ["49000000000011", "49000000000012"]
    # Never seen before: tracked with unknown stock, so not offered as sellable.
    fresh = product_from_rest(payload)
    assert [(v.tracked, v.available) for v in fresh.variants] == [(True, False), (True, False)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "abc"), ("price", "-1.00"), ("id", "gid://shopify/Product/1")],
)
def test_bad_variant_values_are_errors(field: str, value: str) -> None:
    payload = load("products_create.json")
    payload["variants"][0][field] = value
    with pytest.raises(ValueError):
        product_from_rest(payload)


def test_missing_product_id_is_an_error() -> None:
    payload = load("products_create.json")
    del payload["id"]
    with pytest.raises(KeyError):
        product_from_rest(payload)


def test_tags_from_rest_string_and_graphql_list() -> None:
    assert tags("organic,  summer ,, organic,Sale") == ("organic", "summer", "Sale")
    assert tags(["a", " b ", "", "a"]) == ("a", "b")
    assert tags(None) == () and tags("") == ()


def test_money_and_availability_helpers() -> None:
    assert money("19.90") == Decimal("19.90") and money(None) is None and money("") is None
    assert variant_available(False, "deny", 0) is True
    assert variant_available(True, "continue", 0) is True
    assert variant_available(True, "deny", None) is False
    assert variant_available(True, "deny", 1) is True


def test_smart_and_custom_collection_payloads() -> None:
    smart = collection_from_rest(load("collections_create_smart.json"))
    assert smart == Collection(
        id="450000000010",
        handle="organic-under-30",
        title="Organic under $30",
        kind="smart",
        rules=(("tag", "equals", "organic"), ("variant_price", "less_than", "30")),
        disjunctive=False,
        published=True,
        updated_at=datetime(2026, 11, 21, 15, 0, tzinfo=UTC),
    )
    custom = collection_from_rest(load("collections_create_custom.json"))
    assert custom.kind == "custom" and custom.rules == () and custom.id == "450000000001"
    hidden = load("collections_create_custom.json") | {"published_at": None}
    assert collection_from_rest(hidden).published is False


# --- smart-collection rules ----------------------------------------------------------------


def product(**kw: object) -> Product:
    variants = kw.pop("variants", None) or (Variant(id="1", price=Decimal("19.99")),)
    return Product(id="1", title="Tee", handle="tee", variants=variants, **kw)  # type: ignore[arg-type]


def smart(*rules: tuple[str, str, str], disjunctive: bool = False) -> Collection:
    return Collection(
        id="9", handle="s", title="S", kind="smart", rules=rules, disjunctive=disjunctive
    )


def test_fixture_smart_collection_selects_by_all_rules() -> None:
    collection = collection_from_rest(load("collections_create_smart.json"))
    tee = product_from_rest(load("products_create.json"))
    assert matches(collection, tee)
    assert not matches(collection, tee.model_copy(update={"tags": ("summer",)}))
    dear = [v.model_copy(update={"price": Decimal("30")}) for v in tee.variants]
    assert not matches(collection, tee.model_copy(update={"variants": tuple(dear)}))


def test_disjunctive_collection_needs_one_rule() -> None:
    rules = (("vendor", "equals", "northwind"), ("type", "equals", "Mug"))
    assert matches(smart(*rules, disjunctive=True), product(vendor="Northwind"))
    assert not matches(smart(*rules), product(vendor="Northwind"))


@pytest.mark.parametrize(
    ("rule", "kw", "expected"),
    [
        (("title", "contains", "TEE"), {}, True),
        (("title", "starts_with", "te"), {}, True),
        (("title", "ends_with", "x"), {}, False),
        (("tag", "equals", "Sale"), {"tags": ("new", "sale")}, True),
        (("tag", "equals", "sale"), {}, False),
        # Negative relations over tags hold only if no tag matches.
        (("tag", "not_contains", "sale"), {"tags": ("new", "sale")}, False),
        (("tag", "not_contains", "sale"), {"tags": ("new",)}, True),
        (("tag", "not_equals", "sale"), {}, True),
        (("vendor", "not_equals", "ridge"), {"vendor": "Ridge"}, False),
        (("variant_price", "greater_than", "19.98"), {}, True),
        (("variant_price", "equals", "19.990"), {}, True),
        (("variant_price", "less_than", "abc"), {}, False),
        (("variant_inventory", "greater_than", "-1"), {}, True),
        (("variant_compare_at_price", "is_set", ""), {}, False),
        (("variant_compare_at_price", "is_not_set", ""), {}, True),
        (("variant_weight", "greater_than", "0"), {}, False),
    ],
)
def test_rule_relations(rule: tuple[str, str, str], kw: dict[str, object], expected: bool) -> None:
    assert matches(smart(rule), product(**kw)) is expected


def test_price_reduced_rule_is_a_flag() -> None:
    reduced = Variant(id="1", price=Decimal("10"), compare_at_price=Decimal("15"))
    full = Variant(id="2", price=Decimal("10"))
    rule = ("is_price_reduced", "is_set", "")
    assert matches(smart(rule), product(variants=(full, reduced)))
    assert not matches(smart(rule), product(variants=(full,)))
    assert matches(smart(("is_price_reduced", "is_not_set", "")), product(variants=(full,)))
    assert not matches(smart(("is_price_reduced", "is_not_set", "")), product(variants=(reduced,)))


def test_custom_collections_and_rule_less_ones_select_nothing() -> None:
    assert not matches(Collection(id="1", handle="c", title="C"), product())
    assert not matches(smart(), product())
