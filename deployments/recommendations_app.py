"""GET /v1/recommendations (docs/api.md): Shopify's Ajax product-recommendations shape, plus
Nova's ranking id, experiment variant and per-product reasons. A plain Starlette app; the Serve
deployment (deployments/recommendations.py) wraps it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from config.settings import Settings
from deployments.errors import handle_nova_error
from deployments.ingest_app import mounted_at_root
from deployments.ranking import engine
from deployments.ranking.shopify_json import product_url
from deployments.ranking.state import ShopStates
from deployments.ranking.view import ShopView
from ingest import ids
from ingest.errors import (
    InvalidParameter,
    NotFound,
    NovaError,
    ProductNotFound,
    StoreUnavailable,
)
from ingest.normalise import customer_id as parse_customer_id
from ingest.normalise import device_class
from ingest.service import customer_key
from ingest.stores.base import Stores

log = logging.getLogger(__name__)

# A visitor seen more than this long ago, before this request, is "returning".
SESSION_GAP = timedelta(minutes=30)
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

Observer = Callable[[engine.Result | None, int, float], None]


@dataclass(frozen=True)
class Parsed:
    shop: str
    request: engine.Request
    client_id: str | None
    customer_id: str | None
    consent: str | None


def build_recommendations_app(
    settings: Settings, stores: Stores, states: ShopStates, observe: Observer | None = None
) -> ASGIApp:
    async def recommendations(request: Request) -> Response:
        started = time.perf_counter()
        result: engine.Result | None = None
        try:
            parsed = parse(request)
            state = await states.get(parsed.shop)
            if state is None:
                raise NotFound(f"unknown shop {parsed.shop}")
            req = parsed.request
            if req.product_id is not None:
                i = state.view.index.get(req.product_id)
                if i is None or not state.view.servable[i]:
                    raise ProductNotFound(
                        f"No product with id {req.product_id} is published in the online store"
                    )
            now = datetime.now(UTC)
            degraded = False
            try:
                visitor = await _visitor(stores, parsed, now)
            except StoreUnavailable as exc:
                # Without session state the answer is contextual: still useful, and visible.
                log.warning("visitor state unavailable, answering contextually: %s", exc)
                visitor, degraded = engine.Visitor(), True
            result = engine.recommend(
                state.view,
                req,
                visitor,
                rules_for=state.rules_for,
                experiments=state.experiments,
                now=now,
            )
            response: Response = Response(
                render(state.view, result, degraded),
                media_type="application/json",
            )
        except NovaError as exc:
            response = await handle_nova_error(request, exc)
        if observe is not None:
            observe(result, response.status_code, time.perf_counter() - started)
        return response

    app = Starlette(
        routes=[Route("/", recommendations, methods=["GET"])],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allow_origins,
                allow_methods=["GET"],
                max_age=86400,
            )
        ],
        exception_handlers={NovaError: handle_nova_error},
    )
    return mounted_at_root(app)


def parse(request: Request) -> Parsed:
    q = request.query_params
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
    device = q.get("device") or device_class(request.headers.get("user-agent"))
    if device not in (None, "mobile", "tablet", "desktop"):
        raise InvalidParameter("device must be mobile, tablet or desktop")
    country = q.get("country")
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise InvalidParameter("country must be a two-letter ISO code")
    consent = q.get("consent")
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
    )


async def _visitor(stores: Stores, parsed: Parsed, now: datetime) -> engine.Visitor:
    """Session state only with consent: a visitor who refused or has not decided gets a
    contextual answer, and their state is not even looked up (docs/privacy.md)."""
    if parsed.consent in ("denied", "unknown") or not (parsed.client_id or parsed.customer_id):
        return engine.Visitor()
    keys = [
        k
        for k in (
            parsed.client_id,
            customer_key(parsed.customer_id) if parsed.customer_id else None,
        )
        if k
    ]
    found = await stores.visitors.get_many(parsed.shop, keys)  # one round trip
    usable = [v for v in found if v.privacy_state in ("guest", "authenticated")]
    if not usable:
        return engine.Visitor()
    recent = tuple(dict.fromkeys(p for v in usable for p in v.recent_views))
    cart = tuple(dict.fromkeys(p for v in usable for p in v.cart))
    last = max((v.last_seen for v in usable if v.last_seen), default=None)
    return engine.Visitor(
        recent_views=recent, cart=cart, returning=last is not None and now - last > SESSION_GAP
    )


def render(view: ShopView, result: engine.Result, degraded: bool = False) -> bytes:
    """The answer as JSON bytes: product fragments serialised once per catalog version, with
    this answer's url (tracking parameters carry its ranking id) and reasons appended."""
    ref = view.products[result.anchor].id if result.anchor is not None else None
    choice = f"{result.experiment}:{result.variant}" if result.experiment else "nova"
    parts = []
    for ranked in result.products:
        product = view.products[ranked.idx]
        fragment = view.json[ranked.idx]
        if fragment is None:  # engine only returns servable products; never serve one without
            continue
        source = next((r["name"] for r in ranked.reasons if r["type"] == "source"), "rule")
        url = product_url(
            product.handle,
            source=source,
            ranking_id=result.ranking_id,
            product_id=product.id,
            ref_product_id=ref,
            choice=choice,
        )
        parts.append(
            b"".join(
                (fragment, b',"url":', to_json(url), b',"reasons":', to_json(ranked.reasons), b"}")
            )
        )
    variant = (
        {"experiment": result.experiment, "name": result.variant} if result.experiment else None
    )
    tail: dict[str, Any] = {"ranking_id": result.ranking_id, "variant": variant}
    if degraded:
        tail["degraded"] = ["visitor_state"]
    return b"".join(
        (
            b'{"intent":',
            to_json(result.intent),
            b',"products":[',
            b",".join(parts),
            b"],",
            to_json(tail)[1:],
        )
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
