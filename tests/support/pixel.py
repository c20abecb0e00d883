"""Builders of Web Pixel events and ingest batches, shaped as Shopify delivers them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Safari/604.1"

PII = {
    "email": "ada.lovelace@example.com",
    "phone": "+1 555-625-1199",
    "first_name": "Augusta",  # long enough never to occur by chance in random ids
    "last_name": "Lovelace",
    "address": "12 Analytical Row",
}


def envelope(
    name: str,
    data: dict[str, Any] | None,
    *,
    client_id: str = "client-1",
    event_id: str | None = None,
    timestamp: datetime | None = None,
    user_agent: str | None = IPHONE,
    href: str = "https://shop.example/products/x?email=ada.lovelace%40example.com",
    type: str = "standard",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id or f"ev-{uuid.uuid4()}",
        "name": name,
        "type": type,
        "timestamp": (timestamp or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "clientId": client_id,
        "seq": 1,
        "context": {
            "document": {"location": {"href": href}, "title": "Shop"},
            "navigator": {"userAgent": user_agent, "language": "en"},
            "window": {"innerWidth": 390},
        },
    }
    if data is not None:
        event["data"] = data
    return event


def gid(kind: str, value: str | int) -> str:
    """Integers become GIDs; strings are sent verbatim (plain ids, or deliberately odd ones)."""
    return f"gid://shopify/{kind}/{value}" if isinstance(value, int) else value


def variant(
    product_id: str | int, variant_id: str | int | None = None, price: float = 19.5
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sku": "SKU-1",
        "title": "Default",
        "price": {"amount": price, "currencyCode": "USD"},
        "product": {"id": gid("Product", product_id), "title": "P", "type": "T", "vendor": "V"},
    }
    if variant_id is not None:
        out["id"] = gid("ProductVariant", variant_id)
    return out


def product_viewed(
    product_id: str | int, variant_id: str | int | None = None, **kw: Any
) -> dict[str, Any]:
    return envelope("product_viewed", {"productVariant": variant(product_id, variant_id)}, **kw)


def _line(product_id: str | int, quantity: int) -> dict[str, Any]:
    v = variant(product_id, int(product_id) * 10)
    return {
        "merchandise": v,
        "quantity": quantity,
        "cost": {"totalAmount": {"amount": 19.5 * quantity, "currencyCode": "USD"}},
    }


def added_to_cart(product_id: str | int, quantity: int = 1, **kw: Any) -> dict[str, Any]:
    return envelope("product_added_to_cart", {"cartLine": _line(product_id, quantity)}, **kw)


def removed_from_cart(product_id: str | int, **kw: Any) -> dict[str, Any]:
    return envelope("product_removed_from_cart", {"cartLine": _line(product_id, 1)}, **kw)


def cart_viewed(product_ids: list[str | int], **kw: Any) -> dict[str, Any]:
    return envelope("cart_viewed", {"cart": {"lines": [_line(p, 1) for p in product_ids]}}, **kw)


def collection_viewed(
    collection_id: str | int, product_ids: list[str | int], **kw: Any
) -> dict[str, Any]:
    data = {
        "collection": {
            "id": f"gid://shopify/Collection/{collection_id}",
            "title": "C",
            "productVariants": [variant(p) for p in product_ids],
        }
    }
    return envelope("collection_viewed", data, **kw)


def search_submitted(query: str, product_ids: list[str | int], **kw: Any) -> dict[str, Any]:
    data = {"searchResult": {"query": query, "productVariants": [variant(p) for p in product_ids]}}
    return envelope("search_submitted", data, **kw)


def checkout(
    name: str,
    items: list[tuple[str | int, int]],
    *,
    order_id: str | int | None = 5550001,
    customer_id: str | int | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A checkout event carrying the PII Shopify sends (contact details and addresses)."""
    address = {
        "firstName": PII["first_name"],
        "lastName": PII["last_name"],
        "address1": PII["address"],
        "city": "London",
        "zip": "N1 7AA",
        "phone": PII["phone"],
    }
    data = {
        "checkout": {
            "token": "tok-1",
            "email": PII["email"],
            "phone": PII["phone"],
            "billingAddress": address,
            "shippingAddress": address,
            "currencyCode": "USD",
            "totalPrice": {"amount": 39.0, "currencyCode": "USD"},
            "lineItems": [
                {"id": str(i), "title": "P", "quantity": q, "variant": variant(p, int(p) * 10)}
                for i, (p, q) in enumerate(items)
            ],
            "order": {
                "id": f"gid://shopify/Order/{order_id}" if order_id else None,
                "customer": {
                    "id": f"gid://shopify/Customer/{customer_id}" if customer_id else None,
                    "isFirstOrder": True,
                },
            },
            "localization": {"country": {"isoCode": "gb"}},
        }
    }
    return envelope(name, data, **kw)


def checkout_completed(items: list[tuple[str | int, int]], **kw: Any) -> dict[str, Any]:
    return checkout("checkout_completed", items, **kw)


def recommendation_viewed(
    ranking_id: str, product_ids: list[str | int], **kw: Any
) -> dict[str, Any]:
    data = {
        "ranking_id": ranking_id,
        "widget": "pdp-related",
        "products": [{"id": str(p), "position": i + 1} for i, p in enumerate(product_ids)],
    }
    event = envelope("nova:recommendation_viewed", None, type="custom", **kw)
    event["customData"] = data
    return event


def recommendation_clicked(
    ranking_id: str, product_id: str | int, position: int, **kw: Any
) -> dict[str, Any]:
    data = {"ranking_id": ranking_id, "product_id": str(product_id), "position": position}
    event = envelope("nova:recommendation_clicked", None, type="custom", **kw)
    event["customData"] = data
    return event


def batch(
    shop: str,
    events: list[dict[str, Any]],
    *,
    analytics: bool | None = True,
    customer_id: str | int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shop": shop,
        "events": events,
        "consent": {
            "analytics": analytics,
            "marketing": analytics,
            "preferences": analytics,
            "sale_of_data": analytics,
        },
    }
    if customer_id is not None:
        body["customerId"] = str(customer_id)
    if key is not None:
        body["key"] = key
    return body
