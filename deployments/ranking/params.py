"""Query parameters of GET /v1/recommendations, validated (docs/api.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from deployments.ranking import engine
from ingest import ids
from ingest.errors import InvalidParameter
from ingest.normalise import customer_id as parse_customer_id
from ingest.normalise import device_class

_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class Parsed:
    shop: str
    request: engine.Request
    client_id: str | None
    customer_id: str | None
    consent: str | None
    cart_given: bool  # the widget sent the cart (even an empty one): no need to look it up


def query(raw: bytes) -> dict[str, str]:
    """A query string as parse_qsl(keep_blank_values=True) reads it, the last value of a
    repeated name winning. Blank values are kept: `cart=` is the widget saying the cart is
    empty. Only percent-encoded or plus-bearing parts are unquoted: the storefront's queries
    rarely have any, and parse_qsl's unquoting of every part was ~6% of an answer's CPU."""
    out: dict[str, str] = {}
    for part in raw.decode(errors="replace").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = (
                unquote_plus(name, errors="replace"),
                unquote_plus(value, errors="replace"),
            )
        out[name] = value
    return out


def parse(q: Mapping[str, str], user_agent: str | None = None) -> Parsed:
    """Validate a request's query parameters (422 for anything wrong, as Shopify does). A blank
    value is an absent one, except `cart=`: an empty cart, which needs no session lookup."""
    shop_raw = q.get("shop")
    if not shop_raw:
        raise InvalidParameter("A shop value is missing")
    try:
        shop = ids.shop_domain(shop_raw)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    intent = q.get("intent") or "related"
    if intent not in engine.INTENTS:
        raise InvalidParameter("The intent parameter must be one of " + ", ".join(engine.INTENTS))
    product = _product(q.get("product_id"), "product_id") if q.get("product_id") else None
    if intent in engine.NEEDS_PRODUCT and product is None:
        raise InvalidParameter("A product_id value is missing")
    cart = _products(q.get("cart"), "cart")
    if intent == "frequently_bought_together" and product is None and not cart:
        raise InvalidParameter("frequently_bought_together needs a product_id or a cart")
    top = 10 if intent in engine.SHOPIFY_INTENTS else 50
    limit = _int(q.get("limit"), "limit", default=10, low=1, high=top)
    device = q.get("device") or device_class(user_agent)
    if device not in (None, "mobile", "tablet", "desktop"):
        raise InvalidParameter("device must be mobile, tablet or desktop")
    country = q.get("country") or None
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise InvalidParameter("country must be a two-letter ISO code")
    consent = q.get("consent") or None
    if consent not in (None, "granted", "denied", "unknown"):
        raise InvalidParameter("consent must be granted, denied or unknown")
    client_id = _token(q.get("client_id"), "client_id")
    customer = None
    if q.get("customer_id"):
        try:
            customer = parse_customer_id(q["customer_id"])
        except ValueError as exc:
            raise InvalidParameter(f"customer_id: {exc}") from None
    widget = _token(q.get("widget"), "widget")
    return Parsed(
        shop=shop,
        request=engine.Request(
            intent=intent,
            limit=limit,
            product_id=product,
            cart=cart,
            exclude=_products(q.get("exclude"), "exclude"),
            widget=widget,
            device=device,
            country=country.upper() if country else None,
            unit=customer or client_id,
        ),
        client_id=client_id,
        customer_id=customer,
        consent=consent,
        cart_given="cart" in q,
    )


def _product(value: str | None, name: str) -> str:
    try:
        return ids.product_id(value)
    except ValueError as exc:
        raise InvalidParameter(f"{name}: {exc}") from None


def _products(value: str | None, name: str) -> tuple[str, ...]:
    if not value:
        return ()
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > 100:
        raise InvalidParameter(f"{name}: at most 100 products")
    return tuple(dict.fromkeys(_product(v, name) for v in items))


def _int(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidParameter(f"{name} must be an integer from {low} to {high}")
    return int(value)


def _token(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if not _TOKEN.match(value):
        raise InvalidParameter(f"{name} is not a valid id")
    return value
