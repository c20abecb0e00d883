"""Shopify webhooks (/webhooks) in-process on both backends. Signatures are made here with
Shopify's documented recipe (base64 HMAC-SHA256 of the raw body), not with Nova's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import new_shop_domain
from support import pixel
from support.shopify import ORDER_PII, load
from support.stores import dump_everything, settle

from config.settings import Settings
from deployments import demo
from deployments.ingest_app import build_ingest_app
from deployments.simulate import generate_catalog
from deployments.webhooks_app import build_webhooks_app
from ingest import shops
from ingest.errors import StoreUnavailable
from ingest.records import Shop
from ingest.service import IngestService
from ingest.stores.base import Stores

SECRET = "shpss_current_0123456789abcdef"
PREVIOUS = "shpss_previous_fedcba9876543210"
TEE, SMALL, MEDIUM = "7100000000001", "42000000000011", "42000000000012"


def shopify_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Shopify:
    """Delivers webhooks the way Shopify does: JSON body, HMAC and delivery headers."""

    def __init__(self, client: httpx.AsyncClient, shop: str) -> None:
        self.client, self.shop = client, shop

    async def send(
        self,
        topic: str,
        payload: Any,
        *,
        secret: str | None = SECRET,
        webhook_id: str | None = None,
        body: bytes | None = None,
        path: str = "/webhooks",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = json.dumps(payload).encode() if body is None else body
        sent = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }
        if secret is not None:
            sent["X-Shopify-Hmac-Sha256"] = shopify_hmac(secret, raw)
        sent.update(headers or {})
        return await self.client.post(path, content=raw, headers=sent)


@pytest.fixture
def webhook_settings(make_settings: Any) -> Settings:
    return make_settings(  # type: ignore[no-any-return]
        NOVA_SHOPIFY_API_SECRET=SECRET, NOVA_SHOPIFY_API_SECRET_PREVIOUS=PREVIOUS
    )


@pytest.fixture
async def shop(stores: Stores) -> Shop:
    return await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))


def client_for(settings: Settings, stores: Stores) -> httpx.AsyncClient:
    app = build_webhooks_app(settings, stores)
    transport = httpx.ASGITransport(app=app, root_path="/webhooks")
    return httpx.AsyncClient(transport=transport, base_url="http://nova.test")


@pytest.fixture
async def shopify(webhook_settings: Settings, stores: Stores, shop: Shop) -> AsyncIterator[Shopify]:
    async with client_for(webhook_settings, stores) as client:
        yield Shopify(client, shop.shop_id)


async def product(stores: Stores, shop: Shop, product_id: str = TEE) -> Any:
    return (await stores.catalog.get_products(shop.shop_id, [product_id])).get(product_id)


# --- authenticity ---------------------------------------------------------------------------


async def test_signed_product_is_stored(shopify: Shopify, stores: Stores, shop: Shop) -> None:
    r = await shopify.send("products/create", load("products_create.json"))
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "topic": "products/create", "result": "stored"}
    stored = await product(stores, shop)
    assert stored.title == "Classic Black T-Shirt" and stored.tags[0] == "organic"
    assert [v.available for v in stored.variants] == [True, False]


async def test_previous_secret_is_accepted(shopify: Shopify, stores: Stores, shop: Shop) -> None:
    r = await shopify.send("products/create", load("products_create.json"), secret=PREVIOUS)
    assert r.status_code == 200
    assert await product(stores, shop) is not None


@pytest.mark.parametrize("case", ["wrong-secret", "tampered-body", "missing-header", "hex"])
async def test_bad_signature_is_401_and_changes_nothing(
    shopify: Shopify, stores: Stores, shop: Shop, case: str
) -> None:
    payload = load("products_create.json")
    raw = json.dumps(payload).encode()
    headers: dict[str, str] = {}
    kw: dict[str, Any] = {}
    if case == "wrong-secret":
        kw["secret"] = "shpss_someone_else"
    elif case == "tampered-body":
        # Signed as sent by Shopify, then changed on the way.
        headers["X-Shopify-Hmac-Sha256"] = shopify_hmac(SECRET, raw)
        kw["body"] = raw.replace(b"19.99", b"0.01")
    elif case == "missing-header":
        kw["secret"] = None
    else:
        headers["X-Shopify-Hmac-Sha256"] = hmac.new(
            SECRET.encode(), raw, hashlib.sha256
        ).hexdigest()
    r = await shopify.send("products/create", payload, headers=headers, **kw)
    assert r.status_code == 401
    assert r.json()["message"] == "Unauthorized"
    assert await stores.catalog.list_products(shop.shop_id) == []


async def test_without_a_configured_secret_everything_is_401(
    settings: Settings, stores: Stores, shop: Shop
) -> None:
    assert settings.shopify_api_secret is None
    async with client_for(settings, stores) as client:
        r = await Shopify(client, shop.shop_id).send(
            "products/create", load("products_create.json")
        )
    assert r.status_code == 401
    assert "NOVA_SHOPIFY_API_SECRET" in r.json()["description"]
    assert await stores.catalog.list_products(shop.shop_id) == []


async def test_signature_is_checked_before_anything_else(shopify: Shopify) -> None:
    """An unsigned request learns nothing: not whether the shop or topic exists."""
    unknown = Shopify(shopify.client, new_shop_domain())
    assert (await unknown.send("products/create", {}, secret="x")).status_code == 401
    assert (await shopify.send("shop/redact", {}, secret="x")).status_code == 401
    assert (await shopify.send("x", b"{", secret="x", body=b"{")).status_code == 401


# --- requests Nova refuses or ignores -------------------------------------------------------


async def test_unknown_shop_is_404(shopify: Shopify) -> None:
    unknown = Shopify(shopify.client, new_shop_domain())
    r = await unknown.send("products/create", load("products_create.json"))
    assert r.status_code == 404 and "unknown shop" in r.json()["description"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b'{"id": 1'),  # malformed JSON
        ({"X-Shopify-Shop-Domain": "example.com"}, b"{}"),
        ({"X-Shopify-Shop-Domain": ""}, b"{}"),
        ({"X-Shopify-Topic": ""}, b"{}"),  # no topic in header or path
        ({}, b"[]"),  # not an object
        ({}, b'{"title": "no id"}'),
    ],
    ids=["malformed-json", "bad-domain", "no-domain", "no-topic", "array", "no-id"],
)
async def test_malformed_deliveries_are_400(
    shopify: Shopify, headers: dict[str, str], body: bytes
) -> None:
    r = await shopify.send("products/update", None, body=body, headers=headers)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
async def test_compliance_topics_are_501_never_a_silent_200(shopify: Shopify, topic: str) -> None:
    payload = {"shop_id": 954889, "shop_domain": shopify.shop, "customer": {"id": 191167}}
    by_header = await shopify.send(topic, payload)
    by_path = await shopify.send(topic, payload, path=f"/webhooks/{topic}", headers={})
    for r in (by_header, by_path):
        assert r.status_code == 501
        assert topic in r.json()["description"] and "not handle" in r.json()["description"]


async def test_unknown_topic_is_acknowledged_and_ignored(shopify: Shopify) -> None:
    r = await shopify.send("carts/update", {"id": "c1"})
    assert r.status_code == 200 and r.json() == {"status": "ignored", "topic": "carts/update"}


async def test_topic_from_the_path_and_a_mismatch(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    r = await shopify.send(
        "", load("products_create.json"), path="/webhooks/products/update", headers={}
    )
    assert r.status_code == 200 and r.json()["topic"] == "products/update"
    assert await product(stores, shop) is not None
    r = await shopify.send("products/delete", {"id": TEE}, path="/webhooks/products/update")
    assert r.status_code == 400 and "does not match" in r.json()["description"]
    assert await product(stores, shop) is not None


async def test_store_outage_is_503_and_the_retry_applies(
    shopify: Shopify, stores: Stores, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("database", ConnectionRefusedError("refused"))

    with monkeypatch.context() as patch:
        patch.setattr(stores.catalog, "upsert_products", down)
        r = await shopify.send("products/create", load("products_create.json"), webhook_id="w-1")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    # The failed delivery was not recorded, so Shopify's retry is applied, not a duplicate.
    r = await shopify.send("products/create", load("products_create.json"), webhook_id="w-1")
    assert r.json()["result"] == "stored"
    assert await product(stores, shop) is not None


# --- duplicates -----------------------------------------------------------------------------


async def test_repeated_webhook_id_has_no_second_effect(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    await shopify.send("products/create", load("products_create.json"))
    level = load("inventory_levels_update.json")
    first = await shopify.send("inventory_levels/update", level, webhook_id="inv-1")
    assert first.json()["result"] == "stored"
    # The same delivery id with another body: recognised by the id alone, nothing applied.
    again = await shopify.send(
        "inventory_levels/update", level | {"available": 0}, webhook_id="inv-1"
    )
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    medium = (await product(stores, shop)).variants[1]
    assert (medium.inventory_quantity, medium.available) == (7, True)


async def test_an_order_is_counted_once(shopify: Shopify, stores: Stores, shop: Shop) -> None:
    order = load("orders_create.json")
    first = await shopify.send("orders/create", order, webhook_id="order-delivery-1")
    assert first.json()["result"] == "stored"
    retry = await shopify.send("orders/create", order, webhook_id="order-delivery-1")
    assert retry.json()["status"] == "duplicate"
    # Shopify may also deliver the same order under a new webhook id: the order id decides.
    other = await shopify.send("orders/create", order, webhook_id="order-delivery-2")
    assert other.status_code == 200 and other.json()["result"] == "duplicate"
    await settle(stores)
    assert await stores.events.count(shop.shop_id, "order_created") == 1


# --- each topic's effect --------------------------------------------------------------------


async def test_products_update_delete_and_out_of_order_delivery(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    payload = load("products_create.json")
    await shopify.send("products/create", payload)
    newer = payload | {"title": "Renamed", "updated_at": "2026-11-22T00:00:00Z"}
    assert (await shopify.send("products/update", newer)).json()["result"] == "stored"
    older = payload | {"title": "Late arrival", "updated_at": "2026-11-21T00:00:00Z"}
    assert (await shopify.send("products/update", older)).json()["result"] == "stale"
    assert (await product(stores, shop)).title == "Renamed"

    r = await shopify.send("products/delete", {"id": int(TEE)})
    assert r.json()["result"] == "deleted"
    assert await product(stores, shop) is None
    assert (await shopify.send("products/delete", {"id": int(TEE)})).json()["result"] == "absent"


async def test_smart_collection_membership_follows_rules_and_products(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    smart_payload = load("collections_create_smart.json")
    tee_payload = load("products_create.json")
    await shopify.send("products/create", tee_payload)
    r = await shopify.send("collections/create", smart_payload)
    assert r.json()["result"] == "stored, 1 product(s) changed membership"
    assert (await product(stores, shop)).collections == ("450000000010",)

    # The product changes so that the rules no longer select it, then again so they do.
    untagged = tee_payload | {"tags": "summer", "updated_at": "2026-11-22T00:00:00Z"}
    await shopify.send("products/update", untagged)
    assert (await product(stores, shop)).collections == ()
    retagged = tee_payload | {"tags": "organic", "updated_at": "2026-11-23T00:00:00Z"}
    await shopify.send("products/update", retagged)
    assert (await product(stores, shop)).collections == ("450000000010",)

    # The rules change; a later payload without rules keeps the known ones.
    winter = smart_payload | {
        "rules": [{"column": "tag", "relation": "equals", "condition": "winter"}],
        "updated_at": "2026-11-24T00:00:00Z",
    }
    await shopify.send("collections/update", winter)
    assert (await product(stores, shop)).collections == ()
    bare = {k: v for k, v in smart_payload.items() if k not in ("rules", "disjunctive")}
    await shopify.send(
        "collections/update", bare | {"title": "Winter", "updated_at": "2026-11-25T00:00:00Z"}
    )
    [stored] = await stores.catalog.list_collections(shop.shop_id)
    assert (stored.title, stored.kind) == ("Winter", "smart")
    assert stored.rules == (("tag", "equals", "winter"),)


async def test_custom_memberships_survive_updates_and_deleted_collections_leave(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    custom = load("collections_create_custom.json")
    assert (await shopify.send("collections/create", custom)).json()["result"] == "stored"
    await shopify.send("collections/create", load("collections_create_smart.json"))
    await shopify.send("products/create", load("products_create.json"))
    # Custom memberships come from Shopify (a bulk export); Nova cannot derive them.
    stored = await product(stores, shop)
    await stores.catalog.upsert_products(
        shop.shop_id, [stored.model_copy(update={"collections": ("450000000001", "450000000010")})]
    )
    update = load("products_create.json") | {
        "title": "Tee v2",
        "updated_at": "2026-11-22T00:00:00Z",
    }
    await shopify.send("products/update", update)
    assert (await product(stores, shop)).collections == ("450000000001", "450000000010")

    r = await shopify.send("collections/delete", {"id": 450000000001, "published_scope": "web"})
    assert r.json()["result"] == "deleted, 1 product(s) changed membership"
    assert (await product(stores, shop)).collections == ("450000000010",)
    assert [c.id for c in await stores.catalog.list_collections(shop.shop_id)] == ["450000000010"]


async def test_inventory_level_sets_stock_over_locations_and_availability(
    shopify: Shopify, stores: Stores, shop: Shop
) -> None:
    await shopify.send("products/create", load("products_create.json"))
    level = load("inventory_levels_update.json")  # item of the sold-out M variant
    await shopify.send("inventory_levels/update", level)
    other_location = level | {"location_id": 61000000002, "available": 2}
    await shopify.send("inventory_levels/update", other_location)
    medium = (await product(stores, shop)).variants[1]
    assert (medium.id, medium.inventory_quantity, medium.available) == (MEDIUM, 9, True)

    await shopify.send("inventory_levels/update", level | {"available": 0})
    await shopify.send("inventory_levels/update", other_location | {"available": 0})
    medium = (await product(stores, shop)).variants[1]
    assert (medium.inventory_quantity, medium.available) == (0, False)
    assert (await product(stores, shop)).variants[0].inventory_quantity == 5  # untouched

    unknown_item = level | {"inventory_item_id": 1}
    r = await shopify.send("inventory_levels/update", unknown_item)
    assert r.status_code == 200 and "no variant" in r.json()["result"]
    r = await shopify.send("inventory_levels/update", level | {"available": None})
    assert r.status_code == 200 and r.json()["result"].startswith("ignored")
    r = await shopify.send("inventory_levels/update", level | {"available": "many"})
    assert r.status_code == 400


async def test_order_is_stored_anonymously_without_personal_data(
    shopify: Shopify, stores: Stores, shop: Shop, webhook_settings: Settings
) -> None:
    r = await shopify.send("orders/create", load("orders_create.json"))
    assert r.status_code == 200 and r.json()["result"] == "stored"
    await settle(stores)
    [event] = await stores.events.read(shop.shop_id)
    assert (event.event_id, event.name, event.customer_id) == (
        "order:5500000000001",
        "order_created",
        None,
    )
    assert [item["product_id"] for item in event.payload["items"]] == [TEE, "7100000000002"]
    everything = (await dump_everything(stores, webhook_settings.redis_prefix)).lower()
    assert [pii for pii in ORDER_PII if pii in everything] == []


async def test_app_uninstalled_makes_ingest_refuse_the_shop(
    shopify: Shopify, stores: Stores, shop: Shop, make_settings: Any
) -> None:
    settings = make_settings(NOVA_SHOP_CACHE_TTL_S="0")
    ingest = build_ingest_app(settings, IngestService(settings, stores))
    transport = httpx.ASGITransport(app=ingest, root_path="/v1/events")
    async with httpx.AsyncClient(transport=transport, base_url="http://nova.test") as client:

        async def post_event() -> int:
            body = pixel.batch(shop.shop_id, [pixel.product_viewed(1)])
            r = await client.post("/v1/events", json=body, headers={"X-Nova-Key": shop.ingest_key})
            return r.status_code

        assert await post_event() == 202
        payload = {
            "id": 954889,
            "name": "Demo",
            "domain": shop.shop_id,
            "myshopify_domain": shop.shop_id,
        }
        r = await shopify.send("app/uninstalled", payload)
        assert r.status_code == 200 and r.json()["result"] == "uninstalled"
        stored = await stores.shops.get_shop(shop.shop_id)
        assert stored is not None and stored.uninstalled_at is not None
        assert await post_event() == 401
        # A second delivery changes nothing; later catalog webhooks are acknowledged, not kept.
        again = await shopify.send("app/uninstalled", payload)
        assert again.json()["result"] == "already uninstalled"
        assert await stores.shops.get_shop(shop.shop_id) == stored
        late = await shopify.send("products/create", load("products_create.json"))
        assert late.status_code == 200 and late.json()["status"] == "ignored"
        assert await product(stores, shop) is None


# --- the demo's catalog ---------------------------------------------------------------------


async def test_demo_catalog_arrives_intact_through_webhooks_and_the_bulk_sync(
    webhook_settings: Settings, stores: Stores, shop: Shop
) -> None:
    catalog = generate_catalog(60)
    custom = {catalog.collections["all"], catalog.collections["new-arrivals"]}
    async with client_for(webhook_settings, stores) as client:
        statuses = await demo.post_catalog(client, webhook_settings, shop.shop_id, catalog)
    assert statuses == {200: len(catalog.collections) + 60}
    # After the webhooks: everything but the custom collections' members, which only the
    # export knows; smart ones were computed from their rules as products arrived.
    by_id = {p.id: p for p in await stores.catalog.list_products(shop.shop_id)}
    assert by_id.keys() == {p.id for p in catalog.products}
    for p in catalog.products:
        assert set(by_id[p.id].collections) == set(p.collections) - custom
        assert by_id[p.id].model_copy(update={"collections": p.collections}) == p

    report = await demo.sync_catalog(webhook_settings, shop.shop_id, catalog)
    assert (report.products, report.stale, report.skipped) == (60, 0, [])
    assert await stores.catalog.list_products(shop.shop_id) == sorted(
        catalog.products, key=lambda p: p.id
    )
    kinds = {c.handle: c.kind for c in await stores.catalog.list_collections(shop.shop_id)}
    assert kinds["all"] == "custom" and kinds["sale"] == "smart" and kinds["mugs"] == "smart"
