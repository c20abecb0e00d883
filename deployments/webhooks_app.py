"""The HTTP face of Shopify webhooks: POST /webhooks (topic in X-Shopify-Topic) and
POST /webhooks/<topic> (docs/api.md, "Webhooks in"). A plain Starlette app; the Serve
deployment (deployments/webhooks.py) wraps it, tests run it in-process.

Order of checks: the HMAC over the raw bytes first (nothing about an unauthenticated request
is believed, not even its topic), then the topic, the JSON, the shop, the delivery id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from config.settings import Settings
from deployments.errors import handle_nova_error
from deployments.ingest_app import mounted_at_root
from ingest import ids
from ingest.catalog import CatalogService
from ingest.errors import (
    InvalidRequest,
    InvalidSignature,
    NotFound,
    NotSupported,
    NovaError,
    PayloadTooLarge,
)
from ingest.shopify.hmac_check import verify
from ingest.stores.base import Stores

log = logging.getLogger(__name__)

# Shopify's mandatory privacy topics (reference: mission-anchors §b4). Answering them 200
# without doing the work would tell Shopify a customer's data was handled when it was not.
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
# A product with Shopify's maximum of 2,048 variants is a body of a few MB; far beyond that is
# not a webhook.
MAX_BODY_BYTES = 16 * 1024 * 1024


def build_webhooks_app(
    settings: Settings, stores: Stores, service: CatalogService | None = None
) -> ASGIApp:
    catalog = service or CatalogService(stores)
    secrets = settings.webhook_secrets

    async def receive(request: Request) -> Response:
        try:
            return await _handle(request)
        except NovaError as exc:
            return await handle_nova_error(request, exc)

    async def _handle(request: Request) -> Response:
        raw = await _read_body(request)
        if not secrets:
            raise InvalidSignature(
                "no app secret is configured (NOVA_SHOPIFY_API_SECRET): "
                "no webhook can be verified, so none is accepted"
            )
        if not verify(raw, request.headers.get("x-shopify-hmac-sha256"), secrets):
            raise InvalidSignature(
                "X-Shopify-Hmac-Sha256 is missing or does not match the body under the app secret"
            )
        topic = _topic(request)
        payload = _json(raw)
        if topic in COMPLIANCE_TOPICS:
            raise NotSupported(
                f"{topic} is a mandatory privacy webhook that Nova does not handle yet; "
                "it is refused rather than acknowledged without being acted on"
            )
        if not catalog.handles(topic):
            return JSONResponse({"status": "ignored", "topic": topic})
        shop_id = _shop_domain(request)
        shop = await stores.shops.get_shop(shop_id)
        if shop is None:
            raise NotFound(f"unknown shop {shop_id}")
        if shop.uninstalled_at is not None and topic != "app/uninstalled":
            # Nothing more is kept for a shop that removed Nova; 200 so Shopify stops retrying.
            return JSONResponse({"status": "ignored", "topic": topic, "reason": "uninstalled"})
        webhook_id = request.headers.get("x-shopify-webhook-id")
        if webhook_id and await stores.deliveries.seen(shop_id, webhook_id):
            return JSONResponse({"status": "duplicate", "topic": topic})
        result = await catalog.apply(shop_id, topic, payload)
        if webhook_id:
            # Only after the effect succeeded: a failed attempt must stay retryable.
            await stores.deliveries.record(shop_id, webhook_id, topic, datetime.now(UTC))
        log.debug("webhook %s for %s: %s", topic, shop_id, result)
        return JSONResponse({"status": "ok", "topic": topic, "result": result})

    app = Starlette(
        routes=[
            Route("/", receive, methods=["POST"]),
            Route("/{topic:path}", receive, methods=["POST"]),
        ],
        exception_handlers={NovaError: handle_nova_error},
    )
    return mounted_at_root(app)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body of {declared} bytes; the limit is {MAX_BODY_BYTES}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"body over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _topic(request: Request) -> str:
    """The path names the topic for subscriptions made per topic (/webhooks/customers/redact);
    the header always does. Neither is covered by the HMAC, so they must agree."""
    header = (request.headers.get("x-shopify-topic") or "").strip().lower()
    path = str(request.path_params.get("topic") or "").strip("/").lower()
    if header and path and header != path:
        raise InvalidRequest(f"X-Shopify-Topic {header!r} does not match the path {path!r}")
    topic = header or path
    if not topic:
        raise InvalidRequest("no topic: send X-Shopify-Topic or post to /webhooks/<topic>")
    return topic


def _json(raw: bytes) -> Any:
    try:
        return pydantic_core.from_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None


def _shop_domain(request: Request) -> str:
    domain = request.headers.get("x-shopify-shop-domain")
    if not domain:
        raise InvalidRequest("missing X-Shopify-Shop-Domain")
    try:
        return ids.shop_domain(domain)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
