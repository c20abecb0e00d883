"""From a validated pixel event to the StoredEvent Nova keeps.

This is where data minimisation happens: the payload of a stored event is built field by field
from a whitelist. Checkout contact details, addresses, names, the user agent, page query strings
and anything a custom event carries under a personal-looking key never reach a store.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ingest import events as ev
from ingest import ids
from ingest.errors import InvalidEvent
from ingest.records import StoredEvent

_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.+Mobile|Windows Phone", re.IGNORECASE)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)|Silk", re.IGNORECASE)

# Keys whose values identify a person. Matched case-insensitively after removing _ and -.
_PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "firstname",
        "lastname",
        "fullname",
        "name",
        "address",
        "address1",
        "address2",
        "billingaddress",
        "shippingaddress",
        "zip",
        "postalcode",
        "city",
        "street",
        "ip",
        "ipaddress",
        "birthday",
        "useragent",
    }
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,24}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_MAX_GENERIC_BYTES = 4096


@functools.lru_cache(maxsize=4096)  # a visitor sends the same user agent with every event
def device_class(user_agent: str | None, inner_width: int | None = None) -> str | None:
    """mobile | tablet | desktop, from the user agent (width as a fallback). The UA itself is
    not kept: it is a fingerprinting surface and rules only need the class."""
    if user_agent:
        # Tablets first: iPad Safari's user agent also says "Mobile".
        if _TABLET.search(user_agent):
            return "tablet"
        if _MOBILE.search(user_agent):
            return "mobile"
        return "desktop"
    if inner_width:
        return "mobile" if inner_width < 768 else "tablet" if inner_width < 1024 else "desktop"
    return None


def normalise(shop_id: str, event: ev.Envelope) -> StoredEvent:
    """Raises InvalidEvent when an id inside the event is not a valid Shopify id."""
    context = event.context
    navigator = context.navigator if context else None
    window = context.window if context else None
    base: dict[str, Any] = {
        "shop_id": shop_id,
        "event_id": event.id,
        "name": event.name,
        "occurred_at": event.timestamp,
        "client_id": event.client_id,
        "privacy_state": "unknown",
        "device": device_class(
            navigator.user_agent if navigator else None, window.inner_width if window else None
        ),
    }
    builder = _BUILDERS.get(type(event), _generic)
    try:
        base.update(builder(event))
    except ValueError as exc:
        raise InvalidEvent(str(exc)) from exc
    return StoredEvent(**base)


def _variant_fields(variant: ev.ProductVariant) -> dict[str, Any]:
    out: dict[str, Any] = {"product_id": ids.product_id(variant.product.id)}
    if variant.id is not None:
        out["variant_id"] = ids.variant_id(variant.id)
    return out


def _price(money: ev.Money | None) -> dict[str, Any]:
    return {"price": money.amount, "currency": money.currency_code} if money else {}


def _product_viewed(e: Any) -> dict[str, Any]:
    v = e.data.product_variant
    return {**_variant_fields(v), "payload": _price(v.price)}


def _cart_line(e: Any) -> dict[str, Any]:
    line: ev.CartLine | None = e.data.cart_line
    if line is None:
        return {"payload": {}}
    cost = line.cost.total_amount if line.cost else None
    return {
        **_variant_fields(line.merchandise),
        "quantity": line.quantity,
        "payload": {**_price(line.merchandise.price), **_line_total(cost)},
    }


def _line_total(money: ev.Money | None) -> dict[str, Any]:
    return {"line_total": money.amount} if money else {}


def _item(variant: ev.ProductVariant, quantity: int, price: ev.Money | None) -> dict[str, Any]:
    item = {**_variant_fields(variant), "quantity": quantity}
    if price is not None:
        item["price"] = price.amount
    return item


def _collection_viewed(e: Any) -> dict[str, Any]:
    c: ev.Collection = e.data.collection
    return {
        "payload": {
            "collection_id": ids.shopify_id(c.id, "Collection"),
            "product_ids": _unique(ids.product_id(v.product.id) for v in c.product_variants),
        }
    }


def _search_submitted(e: Any) -> dict[str, Any]:
    r: ev.SearchResult = e.data.search_result
    return {
        "payload": {
            "query": r.query.strip()[:256],
            "product_ids": _unique(ids.product_id(v.product.id) for v in r.product_variants),
        }
    }


def _cart_viewed(e: Any) -> dict[str, Any]:
    cart = e.data.cart
    lines = cart.lines if cart else []
    return {"payload": {"items": [_item(li.merchandise, li.quantity, None) for li in lines]}}


def _checkout(e: Any) -> dict[str, Any]:
    co: ev.Checkout = e.data.checkout
    items = [
        _item(li.variant, li.quantity, li.variant.price)
        for li in co.line_items
        if li.variant is not None
    ]
    payload: dict[str, Any] = {"items": items}
    if co.total_price is not None:
        payload["total"] = co.total_price.amount
    currency = co.currency_code or (co.total_price.currency_code if co.total_price else None)
    if currency:
        payload["currency"] = currency
    out: dict[str, Any] = {"payload": payload}
    order = co.order
    if order is not None and order.id is not None:
        out["order_id"] = _order_id(order.id)
    if order is not None and order.customer is not None and order.customer.id is not None:
        out["customer_id"] = customer_id(order.customer.id)
        if order.customer.is_first_order is not None:
            payload["first_order"] = order.customer.is_first_order
    loc = co.localization
    if loc and loc.country and loc.country.iso_code:
        out["country"] = loc.country.iso_code.upper()[:2]
    return out


def _page_viewed(e: Any) -> dict[str, Any]:
    doc = e.context.document if e.context else None
    href = doc.location.href if doc and doc.location else None
    # The path only: query strings and fragments carry emails, tokens and campaign ids.
    return {"payload": {"path": urlsplit(href).path[:512]} if href else {}}


def _recommendation_viewed(e: Any) -> dict[str, Any]:
    d: ev.RecommendationViewedData = e.data
    products = [{"id": ids.product_id(p.id), "position": p.position} for p in d.products]
    return {"ranking_id": d.ranking_id, "payload": {"products": products, "widget": d.widget}}


def _recommendation_clicked(e: Any) -> dict[str, Any]:
    d: ev.RecommendationClickedData = e.data
    return {
        "ranking_id": d.ranking_id,
        "product_id": ids.product_id(d.product_id),
        "payload": {"position": d.position, "widget": d.widget},
    }


def _generic(e: Any) -> dict[str, Any]:
    data = scrub(e.data) if isinstance(e, ev.GenericEvent) and e.data else None
    payload: dict[str, Any] = {"type": e.type}
    if data:
        size = len(json.dumps(data, default=str))
        payload["data"] = data if size <= _MAX_GENERIC_BYTES else {"truncated": True}
    return {"payload": payload}


def scrub(value: Any) -> Any:
    """A copy of a custom payload without personal-looking keys or email/phone-looking values."""
    if isinstance(value, dict):
        return {
            k: scrub(v)
            for k, v in value.items()
            if k.replace("_", "").replace("-", "").lower() not in _PII_KEYS
            and not (isinstance(v, str) and _looks_personal(v))
        }
    if isinstance(value, list):
        return [scrub(v) for v in value if not (isinstance(v, str) and _looks_personal(v))]
    return value


def _looks_personal(text: str) -> bool:
    if _EMAIL.search(text):
        return True
    # A phone number is written with separators or a leading +; a bare digit string is far
    # more likely an id (Shopify ids are 10-14 digits) and a date is not a phone either.
    if not _PHONE.match(text) or _DATE.match(text):
        return False
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and (text.startswith("+") or any(c in text for c in " ()-."))


def customer_id(value: object) -> str:
    return ids.shopify_id(value, "Customer")


def _order_id(value: object) -> str:
    kind = ids.gid_kind(value)
    return ids.shopify_id(value, kind if kind in ("Order", "OrderIdentity") else "Order")


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


_BUILDERS: dict[type[ev.Envelope], Callable[[Any], dict[str, Any]]] = {
    ev.PageViewed: _page_viewed,
    ev.ProductViewed: _product_viewed,
    ev.CollectionViewed: _collection_viewed,
    ev.SearchSubmitted: _search_submitted,
    ev.ProductAddedToCart: _cart_line,
    ev.ProductRemovedFromCart: _cart_line,
    ev.CartViewed: _cart_viewed,
    ev.CheckoutStarted: _checkout,
    ev.CheckoutCompleted: _checkout,
    ev.RecommendationViewed: _recommendation_viewed,
    ev.RecommendationClicked: _recommendation_clicked,
}
