"""GET /v1/recommendations over HTTP (in-process ASGI) on both backends: Shopify's response
shape and errors, privacy, rules and experiments managed through the admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import new_shop_domain
from support import pixel
from support.catalog import product
from support.stores import settle

from config.settings import Settings
from deployments.admin_app import build_admin_app
from deployments.ranking.refresh import refresh_stats
from deployments.ranking.state import ShopStates
from deployments.recommendations_app import Served, build_recommendations_app
from ingest import shops
from ingest.errors import StoreUnavailable
from ingest.records import Shop
from ingest.service import IngestService
from ingest.stores.base import Stores

AUTH = {"Authorization": "Bearer test-operator"}
PATH = "/v1/recommendations"


class Harness:
    def __init__(self, settings: Settings, stores: Stores, shop: Shop) -> None:
        self.settings, self.stores, self.shop = settings, stores, shop
        self.states = ShopStates(stores)
        self.observed: list[tuple[Served | None, int]] = []
        recs = build_recommendations_app(
            settings, stores, self.states, observe=lambda s, c, _: self.observed.append((s, c))
        )
        admin = build_admin_app(settings, stores)
        self.recs = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=recs, root_path=PATH), base_url="http://n.test"
        )
        self.admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin, root_path="/admin"), base_url="http://n.test"
        )
        self.ingest = IngestService(settings, stores)

    async def get(self, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        query = {"shop": self.shop.shop_id, **params}
        return await self.recs.get(PATH, params=query, headers=headers or {})

    async def send(self, events: list[dict[str, Any]], **kw: Any) -> None:
        await self.ingest.ingest(pixel.batch(self.shop.shop_id, events, **kw), self.shop.ingest_key)

    async def refresh(self) -> None:
        await self.states.refresh_now(self.shop.shop_id)


@pytest.fixture
async def h(settings: Settings, stores: Stores) -> AsyncIterator[Harness]:
    shop = await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))
    catalog = [
        product(1, price="19.99", tags=["summer"], product_type="Sneakers"),
        product(2, price="9.50", product_type="Socks"),
        product(3, price="25.00", product_type="Sneakers", vendor="Beta"),
        product(4, price="120.00", product_type="Jacket", vendor="Gamma"),
        product(5, price="15.00", product_type="Socks", status="draft"),
    ]
    await stores.catalog.upsert_products(shop.shop_id, catalog)
    harness = Harness(settings, stores, shop)
    # Bought together: sneakers 1 with socks 2, in several orders.
    for n in range(3):
        await harness.send(
            [pixel.checkout_completed([(1, 1), (2, 1)], order_id=700 + n, client_id=f"buyer{n}")]
        )
    await settle(stores)  # production: the writer moves them to PostgreSQL first
    await refresh_stats(stores, shop.shop_id, datetime.now(UTC))
    yield harness
    await harness.recs.aclose()
    await harness.admin.aclose()


async def test_shopify_shape_with_ranking_id_and_reasons(h: Harness) -> None:
    r = await h.get(intent="complementary", product_id="gid://shopify/Product/1", limit=2)
    assert r.status_code == 200
    body = r.json()
    assert body["intent"] == "complementary" and body["variant"] is None
    first = body["products"][0]
    assert first["id"] == 2 and first["handle"] == "p2" and first["price"] == 950
    assert first["variants"][0]["id"] == 20 and first["available"] is True
    assert first["reasons"][0] == {
        "type": "source",
        "name": "co_purchase",
        "score": pytest.approx(1.0),
        "anchor": "1",
    }
    url = urlsplit(first["url"])
    query = parse_qs(url.query)
    assert url.path == "/products/p2"
    assert query["pr_rec_id"] == [body["ranking_id"]] and query["pr_rec_pid"] == ["2"]
    assert query["pr_ref_pid"] == ["1"] and query["pr_prod_strat"] == ["co_purchase"]
    assert 5 not in [p["id"] for p in body["products"]]  # a draft is never served


async def test_minor_units_follow_the_shop_currency(h: Harness) -> None:
    from dataclasses import replace

    await h.stores.shops.save_shop(replace(h.shop, currency="JPY"))
    await h.refresh()
    body = (await h.get(intent="trending", limit=10)).json()
    assert {p["id"]: p["price"] for p in body["products"]}[1] == 20  # 19.99 yen -> 20


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"intent": "related"}, 422, "product_id value is missing"),
        ({"intent": "sideways", "product_id": "1"}, 422, "must be one of"),
        ({"intent": "related", "product_id": "1", "limit": "11"}, 422, "1 to 10"),
        ({"intent": "trending", "limit": "51"}, 422, "1 to 50"),
        ({"intent": "trending", "limit": "0"}, 422, "1 to 50"),
        ({"intent": "related", "product_id": "gid://shopify/ProductVariant/1"}, 422, "Product id"),
        ({"intent": "trending", "device": "watch"}, 422, "device"),
        ({"intent": "trending", "customer_id": "nope"}, 422, "customer_id"),
        ({"intent": "trending", "cart": "1,x"}, 422, "cart"),
        ({"intent": "frequently_bought_together"}, 422, "product_id or a cart"),
        ({"intent": "related", "product_id": "999"}, 404, "No product with id 999"),
        ({"intent": "related", "product_id": "5"}, 404, "No product with id 5"),
    ],
)
async def test_errors_in_shopify_shape(
    h: Harness, params: dict[str, str], status: int, text: str
) -> None:
    r = await h.get(**params)
    assert r.status_code == status
    body = r.json()
    assert body["status"] == status and text in body["description"]
    assert body["message"] == ("Invalid parameter error" if status == 422 else "Product not found")


async def test_unknown_shop_is_404(h: Harness) -> None:
    r = await h.recs.get(PATH, params={"shop": new_shop_domain(), "intent": "trending"})
    assert r.status_code == 404


async def test_personal_state_needs_consent(h: Harness) -> None:
    # Visitor "v" viewed product 3 (consented); visitor "p" did the same while pending.
    await h.send([pixel.product_viewed(3, client_id="v")])
    await h.send([pixel.product_viewed(3, client_id="p")], analytics=None)
    ask = {"intent": "recently_viewed", "limit": 1}
    seen = (await h.get(client_id="v", **ask)).json()["products"]
    assert [p["id"] for p in seen] == [3]
    assert seen[0]["reasons"][0]["name"] == "recently_viewed"
    for params in (
        {"client_id": "v", "consent": "denied"},
        {"client_id": "v", "consent": "unknown"},
        {"client_id": "p"},
    ):
        answer = (await h.get(**ask, **params)).json()["products"]
        assert answer[0]["reasons"][0]["name"] != "recently_viewed", params


async def test_rules_through_the_admin_api_change_answers(h: Harness) -> None:
    base = f"/admin/shops/{h.shop.shop_id}"
    before = [p["id"] for p in (await h.get(intent="trending")).json()["products"]]
    assert 4 in before
    rules = {
        "rules": [
            {"type": "exclude", "field": "vendor", "values": ["Gamma"], "id": "no-g"},
            {"type": "pin", "product_id": "3", "position": 1},
        ]
    }
    put = await h.admin.put(f"{base}/rules", json=rules, headers=AUTH)
    assert put.status_code == 201 and put.json()["version"] == 1
    await h.refresh()
    after = (await h.get(intent="trending")).json()["products"]
    assert 4 not in [p["id"] for p in after] and after[0]["id"] == 3
    assert {"type": "rule", "name": "pin"} in after[0]["reasons"]
    bad = await h.admin.put(f"{base}/rules", json={"rules": [{"type": "nope"}]}, headers=AUTH)
    assert bad.status_code == 400
    await h.admin.put(f"{base}/rules", json={"rules": []}, headers=AUTH)
    back = await h.admin.post(f"{base}/rules/rollback", json={"version": 1}, headers=AUTH)
    assert back.json()["version"] == 3 and back.json()["restored"] == 1
    versions = (await h.admin.get(f"{base}/rules/versions", headers=AUTH)).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert (await h.admin.get(f"{base}/rules/2", headers=AUTH)).json()["rules"] == []


async def test_experiment_through_the_admin_api(h: Harness) -> None:
    base = f"/admin/shops/{h.shop.shop_id}/experiments"
    spec = {
        "id": "recs-v-pop",
        "name": "behaviour vs popular",
        "variants": [{"name": "nova"}, {"name": "popular", "strategy": "popular"}],
    }
    created = await h.admin.post(base, json=spec, headers=AUTH)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert created.json()["salt"]
    assert (await h.admin.post(base, json=spec, headers=AUTH)).status_code == 409
    await h.refresh()
    assert (await h.get(intent="trending", client_id="c1")).json()["variant"] is None
    started = await h.admin.post(f"{base}/recs-v-pop/start", headers=AUTH)
    assert started.json()["status"] == "running"
    await h.refresh()
    seen = {}
    for n in range(30):
        body = (await h.get(intent="trending", client_id=f"c{n}")).json()
        again = (await h.get(intent="trending", client_id=f"c{n}")).json()
        assert body["variant"] == again["variant"]  # sticky
        seen[body["variant"]["name"]] = body
    assert set(seen) == {"nova", "popular"}
    assert seen["popular"]["ranking_id"].endswith(".recs-v-pop.popular")
    stopped = await h.admin.post(f"{base}/recs-v-pop/stop", headers=AUTH)
    assert stopped.json()["status"] == "stopped"
    assert (await h.admin.post(f"{base}/recs-v-pop/start", headers=AUTH)).status_code == 400


async def test_without_session_state_answers_are_contextual_and_say_so(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Visitor "v" viewed product 3; then the session store stops answering.
    await h.send([pixel.product_viewed(3, client_id="v")])

    async def down(shop_id: str, client_ids: object) -> None:
        raise StoreUnavailable("redis", ConnectionRefusedError("refused"))

    monkeypatch.setattr(h.stores.visitors, "get_many", down)
    ask = {"intent": "recently_viewed", "client_id": "v", "limit": 2}
    first, second = await h.get(**ask), await h.get(**ask)
    assert first.status_code == 200, first.text
    assert first.json()["degraded"] == ["visitor_state"]
    assert first.json()["products"], "still an answer, from the fallbacks"
    assert all(p["reasons"][0]["name"] != "recently_viewed" for p in first.json()["products"])
    assert "x-nova-cache" not in second.headers  # a degraded answer is never reused
    # A request that needs no session state is not degraded.
    contextual = await h.get(intent="related", product_id="1", cart="")
    assert contextual.status_code == 200 and "degraded" not in contextual.json()


async def test_the_cart_sent_is_authoritative_even_empty(h: Harness) -> None:
    # Visitor "c" put the socks (2) in their cart; the session knows it.
    await h.send([pixel.added_to_cart(2, client_id="c")])
    ask = {"intent": "complementary", "product_id": "1", "client_id": "c"}
    looked_up = [p["id"] for p in (await h.get(**ask)).json()["products"]]
    assert 2 not in looked_up  # the session's cart is excluded
    # The widget sent the cart, empty now: no session lookup, the socks are a complement again.
    sent_empty = await h.get(**ask, cart="", country="", consent="")  # sent as `cart=` etc.
    assert sent_empty.status_code == 200, sent_empty.text
    assert sent_empty.json()["products"][0]["id"] == 2


async def test_answers_are_reused_only_when_no_history_shapes_them(h: Harness) -> None:
    first = await h.get(intent="complementary", product_id="1", limit=2)
    second = await h.get(intent="complementary", product_id="1", limit=2)
    assert (first.headers["x-nova-cache"], second.headers["x-nova-cache"]) == ("miss", "hit")
    a, b = first.json(), second.json()
    assert [p["id"] for p in a["products"]] == [p["id"] for p in b["products"]]
    assert a["ranking_id"] != b["ranking_id"]  # every answer is its own ranking
    assert b["ranking_id"] in b["products"][0]["url"] and a["ranking_id"] not in str(b)
    await h.send([pixel.product_viewed(3, client_id="hist")])
    personal = await h.get(intent="recently_viewed", client_id="hist", limit=1)
    assert "x-nova-cache" not in personal.headers


async def test_the_metrics_see_each_answer_s_intent_and_sources_hit_or_miss(h: Harness) -> None:
    for _ in range(2):  # a miss, then the same answer from the cache
        r = await h.get(intent="complementary", product_id="1", limit=3)
        assert r.status_code == 200
    sources: dict[str, int] = {}
    for p in r.json()["products"]:
        first = next((why["name"] for why in p["reasons"] if why["type"] == "source"), "rule")
        sources[first] = sources.get(first, 0) + 1
    expected = Served("complementary", tuple(sources.items()))
    assert h.observed == [(expected, 200), (expected, 200)]
    assert sum(n for _, n in expected.sources) == len(r.json()["products"]) > 0
    await h.get(intent="complementary", product_id="999")
    assert h.observed[-1] == (None, 404)


async def test_cors_and_methods(h: Harness) -> None:
    r = await h.get(intent="trending", headers={"Origin": "https://shop.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    pre = await h.recs.options(
        PATH, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-methods"] == "GET"
    assert (await h.recs.post(PATH, content=b"{}")).status_code == 405
    assert (await h.recs.get(PATH + "/elsewhere")).status_code == 404
