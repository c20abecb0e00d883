"""ingest/normalise.py: device classes, the stored form of each event, and scrubbing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from support import pixel

from ingest import events as ev
from ingest.errors import InvalidEvent
from ingest.events import PIXEL_EVENT
from ingest.normalise import customer_id, device_class, normalise, scrub
from ingest.records import StoredEvent

SHOP = "nova-demo.myshopify.com"
AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
DESKTOP_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
KINDLE = "Mozilla/5.0 (Linux; U; en-us; KFTT Build/IML74K) AppleWebKit/535.19 Silk/3.4"


def stored(raw: dict[str, Any]) -> StoredEvent:
    return normalise(SHOP, PIXEL_EVENT.validate_python(raw))


# --- device_class -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (pixel.IPHONE, "mobile"),
        (ANDROID_PHONE, "mobile"),
        (ANDROID_TABLET, "tablet"),
        (KINDLE, "tablet"),
        (DESKTOP_CHROME, "desktop"),
        (DESKTOP_MAC, "desktop"),
        ("curl/8.0", "desktop"),
    ],
)
def test_device_class_from_user_agent(ua: str, expected: str) -> None:
    assert device_class(ua) == expected


def test_user_agent_wins_over_width() -> None:
    assert device_class(DESKTOP_CHROME, 360) == "desktop"
    assert device_class(pixel.IPHONE, 1920) == "mobile"


@pytest.mark.parametrize(
    ("width", "expected"),
    [(320, "mobile"), (767, "mobile"), (768, "tablet"), (1023, "tablet"), (1024, "desktop")],
)
def test_device_class_from_width_when_no_user_agent(width: int, expected: str) -> None:
    assert device_class(None, width) == expected
    assert device_class("", width) == expected


def test_device_class_unknown() -> None:
    assert device_class(None) is None
    assert device_class(None, None) is None
    assert device_class(None, 0) is None


def test_ipad_is_a_tablet() -> None:
    assert device_class(IPAD_SAFARI) == "tablet"


# --- common fields ----------------------------------------------------------------------------


def test_common_fields_of_every_stored_event() -> None:
    raw = pixel.product_viewed(101, client_id="client-42", event_id="ev-1", timestamp=AT)
    e = stored(raw)
    assert e.shop_id == SHOP
    assert e.event_id == "ev-1"
    assert e.name == "product_viewed"
    assert e.occurred_at == AT
    assert e.client_id == "client-42"
    assert e.privacy_state == "unknown"
    assert e.device == "mobile"
    assert e.customer_id is None
    assert e.received_at is None


def test_user_agent_is_reduced_to_the_device_class() -> None:
    e = stored(pixel.product_viewed(101, user_agent=DESKTOP_CHROME, timestamp=AT))
    assert e.device == "desktop"
    assert "Chrome" not in e.to_json()


def test_device_from_width_when_the_pixel_sends_no_user_agent() -> None:
    e = stored(pixel.product_viewed(101, user_agent=None, timestamp=AT))
    assert e.device == "mobile"  # the builders' window is 390 px wide


# --- per event type ---------------------------------------------------------------------------


def test_product_viewed() -> None:
    e = stored(pixel.product_viewed(101, 1010, timestamp=AT))
    assert (e.product_id, e.variant_id) == ("101", "1010")
    assert e.payload == {"price": 19.5, "currency": "USD"}


@pytest.mark.parametrize("product", ["101", 101, "gid://shopify/Product/101"])
def test_product_viewed_id_spellings(product: str | int) -> None:
    raw = pixel.product_viewed(1, timestamp=AT)
    raw["data"]["productVariant"]["product"]["id"] = product
    assert stored(raw).product_id == "101"


def test_product_viewed_without_variant_id_or_price() -> None:
    raw = pixel.product_viewed(101, timestamp=AT)
    del raw["data"]["productVariant"]["price"]
    e = stored(raw)
    assert e.product_id == "101"
    assert e.variant_id is None
    assert e.payload == {}


def test_product_viewed_with_variant_gid_as_product_is_invalid() -> None:
    raw = pixel.product_viewed("gid://shopify/ProductVariant/1010", timestamp=AT)
    with pytest.raises(InvalidEvent, match="Product"):
        stored(raw)


def test_product_viewed_with_product_gid_as_variant_is_invalid() -> None:
    raw = pixel.product_viewed(101, "gid://shopify/Product/101", timestamp=AT)
    with pytest.raises(InvalidEvent, match="ProductVariant"):
        stored(raw)


def test_added_to_cart() -> None:
    e = stored(pixel.added_to_cart(101, 3, timestamp=AT))
    assert (e.name, e.product_id, e.variant_id, e.quantity) == (
        "product_added_to_cart",
        "101",
        "1010",
        3,
    )
    assert e.payload == {"price": 19.5, "currency": "USD", "line_total": 58.5}


def test_removed_from_cart() -> None:
    e = stored(pixel.removed_from_cart(102, timestamp=AT))
    assert (e.name, e.product_id, e.variant_id, e.quantity) == (
        "product_removed_from_cart",
        "102",
        "1020",
        1,
    )


def test_cart_line_null_has_no_product() -> None:
    e = stored(pixel.envelope("product_added_to_cart", {"cartLine": None}, timestamp=AT))
    assert e.product_id is None
    assert e.quantity is None
    assert e.payload == {}


def test_cart_viewed_items() -> None:
    e = stored(pixel.cart_viewed([101, 102], timestamp=AT))
    assert e.product_id is None
    assert e.payload == {
        "items": [
            {"product_id": "101", "variant_id": "1010", "quantity": 1},
            {"product_id": "102", "variant_id": "1020", "quantity": 1},
        ]
    }


def test_empty_cart_viewed() -> None:
    assert stored(pixel.envelope("cart_viewed", None, timestamp=AT)).payload == {"items": []}


def test_collection_viewed() -> None:
    e = stored(
        pixel.collection_viewed(9, [101, "102", 101, "gid://shopify/Product/103"], timestamp=AT)
    )
    assert e.payload == {"collection_id": "9", "product_ids": ["101", "102", "103"]}
    assert e.product_id is None


def test_collection_with_wrong_kind_of_id_is_invalid() -> None:
    raw = pixel.collection_viewed(9, [101], timestamp=AT)
    raw["data"]["collection"]["id"] = "gid://shopify/Product/9"
    with pytest.raises(InvalidEvent):
        stored(raw)


def test_search_submitted() -> None:
    e = stored(pixel.search_submitted("  wool socks  ", [102, 103, 102], timestamp=AT))
    assert e.payload == {"query": "wool socks", "product_ids": ["102", "103"]}


def test_search_query_is_cut_to_256_characters() -> None:
    e = stored(pixel.search_submitted("q" * 500, [], timestamp=AT))
    assert e.payload["query"] == "q" * 256


@pytest.mark.parametrize("name", ["checkout_started", "checkout_completed"])
def test_checkout(name: str) -> None:
    raw = pixel.checkout(name, [(102, 2), (103, 1)], customer_id=77, timestamp=AT)
    e = stored(raw)
    assert e.name == name
    assert e.order_id == "5550001"
    assert e.customer_id == "77"
    assert e.country == "GB"
    assert e.payload == {
        "items": [
            {"product_id": "102", "variant_id": "1020", "quantity": 2, "price": 19.5},
            {"product_id": "103", "variant_id": "1030", "quantity": 1, "price": 19.5},
        ],
        "total": 39.0,
        "currency": "USD",
        "first_order": True,
    }


def test_checkout_keeps_no_pii_anywhere() -> None:
    e = stored(pixel.checkout_completed([(102, 1)], customer_id=77, timestamp=AT))
    text = e.to_json()
    for value in (*pixel.PII.values(), "London", "N1 7AA", "tok-1"):
        assert value not in text
    assert "email" not in text
    assert "address" not in text.lower()


def test_checkout_without_customer_or_order() -> None:
    raw = pixel.checkout_completed([(102, 1)], order_id=None, timestamp=AT)
    e = stored(raw)
    assert e.customer_id is None
    assert e.order_id is None
    assert "first_order" not in e.payload


def test_checkout_order_identity_gid() -> None:
    raw = pixel.checkout_completed([(102, 1)], timestamp=AT)
    raw["data"]["checkout"]["order"]["id"] = "gid://shopify/OrderIdentity/8812"
    assert stored(raw).order_id == "8812"


def test_checkout_plain_order_id() -> None:
    raw = pixel.checkout_completed([(102, 1)], timestamp=AT)
    raw["data"]["checkout"]["order"]["id"] = 8812
    assert stored(raw).order_id == "8812"


def test_checkout_order_id_of_another_kind_is_invalid() -> None:
    raw = pixel.checkout_completed([(102, 1)], timestamp=AT)
    raw["data"]["checkout"]["order"]["id"] = "gid://shopify/Customer/8812"
    with pytest.raises(InvalidEvent):
        stored(raw)


def test_checkout_line_without_variant_is_skipped() -> None:
    raw = pixel.checkout_completed([(102, 1), (103, 1)], timestamp=AT)
    raw["data"]["checkout"]["lineItems"][0]["variant"] = None
    e = stored(raw)
    assert [i["product_id"] for i in e.payload["items"]] == ["103"]


def test_checkout_currency_falls_back_to_total_price() -> None:
    raw = pixel.checkout_completed([(102, 1)], timestamp=AT)
    del raw["data"]["checkout"]["currencyCode"]
    raw["data"]["checkout"]["totalPrice"]["currencyCode"] = "EUR"
    assert stored(raw).payload["currency"] == "EUR"


def test_checkout_country_missing() -> None:
    raw = pixel.checkout_completed([(102, 1)], timestamp=AT)
    raw["data"]["checkout"]["localization"] = {"country": {"isoCode": None}}
    assert stored(raw).country is None


def test_page_viewed_keeps_the_path_without_query_or_fragment() -> None:
    raw = pixel.envelope(
        "page_viewed",
        {},
        href="https://shop.example/collections/socks?email=a%40b.example&utm=x#reviews",
        timestamp=AT,
    )
    e = stored(raw)
    assert e.payload == {"path": "/collections/socks"}
    assert "email" not in e.to_json()


def test_page_viewed_default_builder_href() -> None:
    assert stored(pixel.envelope("page_viewed", {}, timestamp=AT)).payload == {
        "path": "/products/x"
    }


def test_page_viewed_without_context() -> None:
    raw = pixel.envelope("page_viewed", {}, timestamp=AT)
    del raw["context"]
    e = stored(raw)
    assert e.payload == {}
    assert e.device is None


def test_recommendation_viewed() -> None:
    raw = pixel.recommendation_viewed("rk-1", ["gid://shopify/Product/103", 104], timestamp=AT)
    e = stored(raw)
    assert e.ranking_id == "rk-1"
    assert e.product_id is None
    assert e.payload == {
        "products": [{"id": "103", "position": 1}, {"id": "104", "position": 2}],
        "widget": "pdp-related",
    }


def test_recommendation_clicked() -> None:
    e = stored(pixel.recommendation_clicked("rk-1", "gid://shopify/Product/104", 2, timestamp=AT))
    assert (e.ranking_id, e.product_id) == ("rk-1", "104")
    assert e.payload == {"position": 2, "widget": None}


def test_recommendation_with_bad_product_id_is_invalid() -> None:
    with pytest.raises(InvalidEvent):
        stored(pixel.recommendation_clicked("rk-1", "not-an-id", 2, timestamp=AT))


def test_every_known_event_has_a_builder() -> None:
    from ingest.normalise import _BUILDERS

    assert set(_BUILDERS) == set(ev.KNOWN_EVENTS.values())


# --- generic events ---------------------------------------------------------------------------


def test_generic_event_keeps_its_type_and_scrubbed_data() -> None:
    raw = pixel.envelope("my_app:quiz", None, type="custom", timestamp=AT)
    raw["customData"] = {"answer": "blue", "email": "ada@example.com", "score": 3}
    e = stored(raw)
    assert e.name == "my_app:quiz"
    assert e.product_id is None
    assert e.payload == {"type": "custom", "data": {"answer": "blue", "score": 3}}


def test_generic_event_without_data() -> None:
    assert stored(pixel.envelope("clicked", None, type="dom", timestamp=AT)).payload == {
        "type": "dom"
    }


def test_generic_event_whose_data_is_all_pii_keeps_no_data() -> None:
    raw = pixel.envelope("my_app:signup", {"email": "ada@example.com"}, timestamp=AT)
    assert stored(raw).payload == {"type": "standard"}


def test_large_generic_data_is_truncated() -> None:
    raw = pixel.envelope("my_app:blob", {"blob": "x" * 5000}, timestamp=AT)
    assert stored(raw).payload == {"type": "standard", "data": {"truncated": True}}


def test_generic_data_at_the_size_limit_is_kept() -> None:
    filler = "x" * (4096 - len(json.dumps({"blob": ""})))
    raw = pixel.envelope("my_app:blob", {"blob": filler}, timestamp=AT)
    assert stored(raw).payload == {"type": "standard", "data": {"blob": filler}}


# --- customer ids -----------------------------------------------------------------------------


def test_customer_id_spellings() -> None:
    assert customer_id("gid://shopify/Customer/77") == "77"
    assert customer_id("77") == "77"
    assert customer_id(77) == "77"
    with pytest.raises(ValueError):
        customer_id("gid://shopify/Order/77")


# --- scrub ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "ada.lovelace@example.com",
        "Contact: ada@example.co.uk please",
        "+1 555-625-1199",
        "+15556251199",
        "(555) 625-1199",
        "555-625-1199",
        "555.625.1199",
        "020 7946 0958",
        "+44 (0)20 7946 0958",
    ],
)
def test_scrub_drops_email_and_phone_values(value: str) -> None:
    assert scrub({"note": value, "keep": "ok"}) == {"keep": "ok"}


@pytest.mark.parametrize(
    "value",
    [
        "7982301",
        "8123456789012",
        "2025-03-01",
        "2025-03-01T12:30:00Z",
        "2025-03-01 12:30",
        "19.99",
        "blue",
        "SKU-1234",
        "",
    ],
)
def test_scrub_keeps_ids_dates_and_plain_values(value: str) -> None:
    assert scrub({"v": value}) == {"v": value}


@pytest.mark.parametrize(
    "key",
    [
        "email",
        "Email",
        "E-Mail",
        "e_mail",
        "phone",
        "first_name",
        "firstName",
        "last-name",
        "full_name",
        "name",
        "address1",
        "billing_address",
        "shippingAddress",
        "zip",
        "postal_code",
        "city",
        "street",
        "ip",
        "ip_address",
        "birthday",
        "user_agent",
        "userAgent",
    ],
)
def test_scrub_drops_pii_key_names(key: str) -> None:
    assert scrub({key: "x", "colour": "blue"}) == {"colour": "blue"}


def test_scrub_drops_pii_keys_at_any_depth() -> None:
    payload = {
        "order": {
            "customer": {"firstName": "Ada", "id": "77", "contact": {"phone": 5556251199}},
            "items": [{"product_id": "101", "name": "Sock"}, {"product_id": "102"}],
        },
        "address": {"city": "London"},
    }
    assert scrub(payload) == {
        "order": {
            "customer": {"id": "77", "contact": {}},
            "items": [{"product_id": "101"}, {"product_id": "102"}],
        }
    }


def test_scrub_lists() -> None:
    assert scrub(["101", "ada@example.com", "+1 555 625 1199", 5, None, ["x@y.example", "ok"]]) == [
        "101",
        5,
        None,
        ["ok"],
    ]


def test_scrub_keeps_non_string_values() -> None:
    assert scrub({"n": 5556251199, "f": 1.5, "b": True, "z": None}) == {
        "n": 5556251199,
        "f": 1.5,
        "b": True,
        "z": None,
    }


def test_scrub_does_not_mutate_its_input() -> None:
    payload = {"email": "ada@example.com", "inner": {"phone": "1"}, "ids": ["1", "a@b.example"]}
    before = json.dumps(payload, sort_keys=True)
    scrub(payload)
    assert json.dumps(payload, sort_keys=True) == before


def test_scrub_non_container_scalars_pass_through() -> None:
    assert scrub(5) == 5
    assert scrub(None) is None
