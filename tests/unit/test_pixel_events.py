"""ingest/events.py: the PIXEL_EVENT discriminated union over Shopify-shaped pixel events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from support import pixel

from ingest import events as ev
from ingest.events import PIXEL_EVENT

AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def parse(raw: dict[str, Any]) -> ev.Envelope:
    return PIXEL_EVENT.validate_python(raw)


STANDARD: list[tuple[dict[str, Any], type[ev.Envelope]]] = [
    (pixel.envelope("page_viewed", {}, timestamp=AT), ev.PageViewed),
    (pixel.product_viewed(101, 1010, timestamp=AT), ev.ProductViewed),
    (pixel.collection_viewed(9, [101, 102], timestamp=AT), ev.CollectionViewed),
    (pixel.search_submitted("wool socks", [102], timestamp=AT), ev.SearchSubmitted),
    (pixel.added_to_cart(101, 2, timestamp=AT), ev.ProductAddedToCart),
    (pixel.removed_from_cart(101, timestamp=AT), ev.ProductRemovedFromCart),
    (pixel.cart_viewed([101, 102], timestamp=AT), ev.CartViewed),
    (pixel.checkout("checkout_started", [(102, 1)], timestamp=AT), ev.CheckoutStarted),
    (pixel.checkout_completed([(102, 1)], timestamp=AT), ev.CheckoutCompleted),
    (pixel.recommendation_viewed("rk-1", [103, 104], timestamp=AT), ev.RecommendationViewed),
    (pixel.recommendation_clicked("rk-1", 104, 2, timestamp=AT), ev.RecommendationClicked),
]


@pytest.mark.parametrize(("raw", "model"), STANDARD, ids=[model.__name__ for _, model in STANDARD])
def test_each_event_name_parses_to_its_model(raw: dict[str, Any], model: type[ev.Envelope]) -> None:
    event = parse(raw)
    assert type(event) is model
    assert event.id == raw["id"]
    assert event.name == raw["name"]
    assert event.client_id == "client-1"
    assert event.timestamp == AT


def test_known_events_cover_every_standard_model() -> None:
    assert set(ev.KNOWN_EVENTS) == {raw["name"] for raw, _ in STANDARD}
    assert all(ev.KNOWN_EVENTS[raw["name"]] is model for raw, model in STANDARD)


def test_envelope_fields() -> None:
    event = parse(pixel.product_viewed(101, user_agent="UA/1.0", timestamp=AT))
    assert event.type == "standard"
    assert event.context is not None
    assert event.context.navigator is not None
    assert event.context.navigator.user_agent == "UA/1.0"
    assert event.context.window is not None
    assert event.context.window.inner_width == 390
    assert event.context.document is not None
    assert event.context.document.location is not None
    assert event.context.document.location.href is not None
    assert event.context.document.location.href.startswith("https://shop.example/products/x")


def test_product_viewed_payload_paths() -> None:
    event = parse(pixel.product_viewed(101, 1010, timestamp=AT))
    assert isinstance(event, ev.ProductViewed)
    v = event.data.product_variant
    assert v.id == "gid://shopify/ProductVariant/1010"
    assert v.product.id == "gid://shopify/Product/101"
    assert v.sku == "SKU-1"
    assert v.price is not None
    assert (v.price.amount, v.price.currency_code) == (19.5, "USD")
    assert (v.product.title, v.product.type, v.product.vendor) == ("P", "T", "V")


def test_integer_ids_stay_integers() -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    raw["data"]["productVariant"]["product"]["id"] = 101
    event = parse(raw)
    assert isinstance(event, ev.ProductViewed)
    assert event.data.product_variant.product.id == 101


def test_cart_line_paths_use_merchandise_as_the_variant() -> None:
    event = parse(pixel.added_to_cart(101, 3, timestamp=AT))
    assert isinstance(event, ev.ProductAddedToCart)
    line = event.data.cart_line
    assert line is not None
    assert line.quantity == 3
    assert line.merchandise.product.id == "gid://shopify/Product/101"
    assert line.merchandise.id == "gid://shopify/ProductVariant/1010"
    assert line.cost is not None
    assert line.cost.total_amount is not None
    assert line.cost.total_amount.amount == 58.5


def test_null_cart_line_is_allowed() -> None:
    event = parse(pixel.envelope("product_added_to_cart", {"cartLine": None}, timestamp=AT))
    assert isinstance(event, ev.ProductAddedToCart)
    assert event.data.cart_line is None


def test_collection_and_search_variants() -> None:
    coll = parse(pixel.collection_viewed(9, [101, 102, 103], timestamp=AT))
    assert isinstance(coll, ev.CollectionViewed)
    assert coll.data.collection.id == "gid://shopify/Collection/9"
    assert [v.product.id for v in coll.data.collection.product_variants] == [
        "gid://shopify/Product/101",
        "gid://shopify/Product/102",
        "gid://shopify/Product/103",
    ]
    search = parse(pixel.search_submitted("wool socks", [102], timestamp=AT))
    assert isinstance(search, ev.SearchSubmitted)
    assert search.data.search_result.query == "wool socks"
    assert len(search.data.search_result.product_variants) == 1


def test_page_viewed_and_cart_viewed_need_no_data() -> None:
    page = parse(pixel.envelope("page_viewed", None, timestamp=AT))
    assert isinstance(page, ev.PageViewed)
    cart = parse(pixel.envelope("cart_viewed", None, timestamp=AT))
    assert isinstance(cart, ev.CartViewed)
    assert cart.data.cart is None


def test_checkout_completed_keeps_order_customer_items_and_localization() -> None:
    event = parse(pixel.checkout_completed([(102, 2), (103, 1)], customer_id=77, timestamp=AT))
    assert isinstance(event, ev.CheckoutCompleted)
    co = event.data.checkout
    assert co.order is not None
    assert co.order.id == "gid://shopify/Order/5550001"
    assert co.order.customer is not None
    assert co.order.customer.id == "gid://shopify/Customer/77"
    assert co.order.customer.is_first_order is True
    assert [(li.variant.product.id, li.quantity) for li in co.line_items if li.variant] == [
        ("gid://shopify/Product/102", 2),
        ("gid://shopify/Product/103", 1),
    ]
    assert co.total_price is not None
    assert co.total_price.amount == 39.0
    assert co.currency_code == "USD"
    assert co.localization is not None
    assert co.localization.country is not None
    assert co.localization.country.iso_code == "gb"


@pytest.mark.parametrize("name", ["checkout_started", "checkout_completed"])
def test_checkout_pii_is_not_part_of_the_model(name: str) -> None:
    event = parse(pixel.checkout(name, [(102, 1)], timestamp=AT))
    assert isinstance(event, ev.CheckoutStarted | ev.CheckoutCompleted)
    co = event.data.checkout
    for field in ("email", "phone", "billing_address", "shipping_address", "token"):
        assert not hasattr(co, field)
        assert field not in ev.Checkout.model_fields
    dumped = event.model_dump_json()
    for value in pixel.PII.values():
        assert value not in dumped
    assert "London" not in dumped
    assert "N1 7AA" not in dumped


# --- generic and custom events ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alert_displayed", "clicked", "payment_info_submitted", "some_app:thing"]
)
def test_unknown_names_become_generic_events(name: str) -> None:
    event = parse(pixel.envelope(name, {"element": {"id": "buy"}}, type="dom", timestamp=AT))
    assert type(event) is ev.GenericEvent
    assert event.name == name
    assert event.type == "dom"
    assert event.data == {"element": {"id": "buy"}}


def test_custom_event_payload_comes_from_custom_data() -> None:
    raw = pixel.envelope("my_app:quiz_done", None, type="custom", timestamp=AT)
    raw["customData"] = {"answer": "blue"}
    event = parse(raw)
    assert isinstance(event, ev.GenericEvent)
    assert event.data == {"answer": "blue"}


def test_generic_event_without_data() -> None:
    event = parse(pixel.envelope("clicked", None, timestamp=AT))
    assert isinstance(event, ev.GenericEvent)
    assert event.data is None


@pytest.mark.parametrize("alias", ["customData", "custom_data", "data"])
def test_nova_events_accept_every_custom_data_spelling(alias: str) -> None:
    raw = pixel.envelope("nova:recommendation_clicked", None, type="custom", timestamp=AT)
    raw[alias] = {"ranking_id": "rk-9", "product_id": "gid://shopify/Product/5", "position": 3}
    event = parse(raw)
    assert isinstance(event, ev.RecommendationClicked)
    assert event.data.ranking_id == "rk-9"
    assert event.data.product_id == "gid://shopify/Product/5"
    assert event.data.position == 3
    assert event.data.widget is None


def test_recommendation_viewed_products_and_positions() -> None:
    event = parse(pixel.recommendation_viewed("rk-1", [103, 104], timestamp=AT))
    assert isinstance(event, ev.RecommendationViewed)
    assert event.data.ranking_id == "rk-1"
    assert event.data.widget == "pdp-related"
    assert [(p.id, p.position) for p in event.data.products] == [("103", 1), ("104", 2)]


def test_nova_event_without_products_is_rejected() -> None:
    raw = pixel.recommendation_viewed("rk-1", [], timestamp=AT)
    with pytest.raises(ValidationError):
        parse(raw)


def test_nova_click_without_ranking_id_is_rejected() -> None:
    raw = pixel.recommendation_clicked("", 104, 1, timestamp=AT)
    with pytest.raises(ValidationError):
        parse(raw)


@pytest.mark.parametrize("position", [0, 1001])
def test_nova_click_position_out_of_range_is_rejected(position: int) -> None:
    with pytest.raises(ValidationError):
        parse(pixel.recommendation_clicked("rk", 104, position, timestamp=AT))


def test_known_name_with_wrong_shape_is_rejected_not_made_generic() -> None:
    raw = pixel.envelope("product_viewed", {"something": "else"}, timestamp=AT)
    with pytest.raises(ValidationError):
        parse(raw)


# --- timestamps -------------------------------------------------------------------------------


def test_timestamp_without_zone_is_utc() -> None:
    raw = pixel.product_viewed(101)
    raw["timestamp"] = "2025-03-01T12:30:00"
    event = parse(raw)
    assert event.timestamp == AT
    assert event.timestamp.utcoffset() == timedelta(0)


def test_timestamp_with_z_and_with_offset() -> None:
    raw = pixel.product_viewed(101)
    raw["timestamp"] = "2025-03-01T12:30:00.000Z"
    assert parse(raw).timestamp == AT
    raw["timestamp"] = "2025-03-01T14:30:00+02:00"
    event = parse(raw)
    assert event.timestamp == AT
    assert event.timestamp.tzinfo == timezone(timedelta(hours=2))


def test_invalid_timestamp_is_rejected() -> None:
    raw = pixel.product_viewed(101)
    raw["timestamp"] = "yesterday"
    with pytest.raises(ValidationError):
        parse(raw)


# --- required fields and limits ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "name", "timestamp", "clientId"])
def test_missing_envelope_field_is_rejected(field: str) -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    del raw[field]
    with pytest.raises(ValidationError):
        parse(raw)


@pytest.mark.parametrize("field", ["id", "clientId"])
def test_empty_id_is_rejected(field: str) -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    raw[field] = ""
    with pytest.raises(ValidationError):
        parse(raw)


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    node = raw
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value


@pytest.mark.parametrize(
    ("make", "path", "limit"),
    [
        (lambda: pixel.product_viewed(101, timestamp=AT), "id", 128),
        (lambda: pixel.product_viewed(101, timestamp=AT), "clientId", 128),
        (lambda: pixel.product_viewed(101, timestamp=AT), "type", 32),
        (lambda: pixel.envelope("x" * 10, {}, timestamp=AT), "name", 128),
        (lambda: pixel.product_viewed(101, timestamp=AT), "data.productVariant.sku", 512),
        (
            lambda: pixel.product_viewed(101, timestamp=AT),
            "data.productVariant.product.title",
            512,
        ),
        (lambda: pixel.search_submitted("q", [], timestamp=AT), "data.searchResult.query", 512),
        (lambda: pixel.product_viewed(101, timestamp=AT), "context.document.location.href", 4096),
        (lambda: pixel.product_viewed(101, timestamp=AT), "context.navigator.userAgent", 2048),
    ],
)
def test_over_long_strings_are_rejected(make: Any, path: str, limit: int) -> None:
    at_limit = make()
    _set(at_limit, path, "a" * limit)
    parse(at_limit)  # exactly at the limit is fine
    over = make()
    _set(over, path, "a" * (limit + 1))
    with pytest.raises(ValidationError):
        parse(over)


def test_too_many_collection_variants_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse(pixel.collection_viewed(9, list(range(1, 502)), timestamp=AT))


@pytest.mark.parametrize("amount", [-0.01, "free"])
def test_bad_price_is_rejected(amount: object) -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    raw["data"]["productVariant"]["price"]["amount"] = amount
    with pytest.raises(ValidationError):
        parse(raw)


@pytest.mark.parametrize("quantity", [-1, 100_001])
def test_cart_quantity_out_of_range_is_rejected(quantity: int) -> None:
    with pytest.raises(ValidationError):
        parse(pixel.added_to_cart(101, quantity, timestamp=AT))


def test_model_is_frozen() -> None:
    event = parse(pixel.product_viewed(101, timestamp=AT))
    with pytest.raises(ValidationError):
        event.client_id = "someone-else"  # type: ignore[misc]


@pytest.mark.parametrize("name", [["product_viewed"], {"n": 1}])
def test_unhashable_event_name_is_a_validation_error(name: object) -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    raw["name"] = name
    with pytest.raises(ValidationError):
        parse(raw)


@pytest.mark.parametrize("name", [None, 42])
def test_non_string_hashable_event_name_is_a_validation_error(name: object) -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    raw["name"] = name
    with pytest.raises(ValidationError):
        parse(raw)
