"""ingest/shopify/orders.py (orders/create as an anonymous basket) and
ingest/shopify/hmac_check.py (webhook signatures), against Shopify's documented recipe
computed here independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from support.shopify import ORDER_PII, load

from ingest.shopify.hmac_check import signature, verify
from ingest.shopify.orders import ANONYMOUS, ORDER_EVENT, order_event

SHOP = "nova-demo.myshopify.com"


def test_order_becomes_an_anonymous_basket_keyed_by_order_id() -> None:
    event = order_event(SHOP, load("orders_create.json"))
    assert event.event_id == "order:5500000000001" and event.order_id == "5500000000001"
    assert (event.name, event.privacy_state, event.client_id) == (ORDER_EVENT, ANONYMOUS, "")
    assert event.customer_id is None
    assert event.occurred_at == datetime(2026, 11, 21, 16, 5, tzinfo=UTC)
    assert event.country == "GB"
    # The custom line (no product) and the gift card are not catalog products.
    assert event.payload == {
        "items": [
            {
                "product_id": "7100000000001",
                "quantity": 2,
                "variant_id": "42000000000011",
                "price": 19.99,
            },
            {
                "product_id": "7100000000002",
                "quantity": 1,
                "variant_id": "42000000000021",
                "price": 21.99,
            },
        ],
        "source": "webhook",
        "total": 61.97,
        "currency": "USD",
    }


def test_no_personal_data_of_the_order_is_kept() -> None:
    stored = order_event(SHOP, load("orders_create.json")).to_json().lower()
    assert [pii for pii in ORDER_PII if pii in stored] == []


def test_gid_order_id_and_missing_optional_fields() -> None:
    payload = {"id": "gid://shopify/Order/77", "line_items": [{"product_id": 5}]}
    event = order_event(SHOP, payload)
    assert event.event_id == "order:77"
    assert event.payload == {"items": [{"product_id": "5", "quantity": 1}], "source": "webhook"}
    assert event.country is None and event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    "payload",
    [{}, {"id": "gid://shopify/Product/1"}, {"id": 1, "line_items": [{"product_id": "x"}]}],
)
def test_malformed_orders_are_errors(payload: dict[str, object]) -> None:
    with pytest.raises((KeyError, ValueError)):
        order_event(SHOP, payload)


# --- HMAC -----------------------------------------------------------------------------------


def shopify_recipe(secret: str, body: bytes) -> str:
    """shopify.dev: base64 of the HMAC-SHA256 of the raw body, keyed with the client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


BODY = json.dumps(load("products_create.json")).encode()


def test_signature_is_shopifys_recipe() -> None:
    assert signature(b"shpss_current", BODY) == shopify_recipe("shpss_current", BODY)


def test_verify_accepts_current_and_previous_secret() -> None:
    secrets = [b"shpss_current", b"shpss_previous"]
    assert verify(BODY, shopify_recipe("shpss_current", BODY), secrets)
    assert verify(BODY, shopify_recipe("shpss_previous", BODY), secrets)
    assert verify(BODY, " " + shopify_recipe("shpss_current", BODY) + "\n", secrets)


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (BODY, shopify_recipe("shpss_wrong", BODY)),
        (BODY.replace(b"19.99", b"0.01"), shopify_recipe("shpss_current", BODY)),
        (BODY, None),
        (BODY, ""),
        (BODY, "not base64 at all"),
        # Hex of the right digest is not what Shopify sends.
        (BODY, hmac.new(b"shpss_current", BODY, hashlib.sha256).hexdigest()),
    ],
    ids=["wrong-secret", "tampered-body", "missing", "empty", "garbage", "hex"],
)
def test_verify_refuses(body: bytes, header: str | None) -> None:
    assert not verify(body, header, [b"shpss_current", b"shpss_previous"])


def test_verify_refuses_everything_without_secrets() -> None:
    assert not verify(BODY, shopify_recipe("", BODY), [])
