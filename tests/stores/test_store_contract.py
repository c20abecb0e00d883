"""One behaviour suite for every store interface, run on the embedded (SQLite) backend and on
the production backend (real PostgreSQL and Redis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import new_shop_domain
from support.stores import settle

from ingest import popularity as pop
from ingest.errors import ShopExists
from ingest.records import Product, Shop, StoredEvent, Variant
from ingest.stores.base import Hit, Stores

NOW = datetime.now(UTC).replace(microsecond=0)


def event(event_id: str, name: str = "product_viewed", **kw: object) -> StoredEvent:
    fields: dict[str, object] = {
        "shop_id": "s.myshopify.com",
        "event_id": event_id,
        "name": name,
        "occurred_at": NOW,
        "client_id": "c1",
        "privacy_state": "guest",
        "product_id": "1",
        "payload": {"price": 10.0},
    }
    fields.update(kw)
    return StoredEvent(**fields)  # type: ignore[arg-type]


def product(pid: str, *variants: str, price: str = "10.00", **kw: object) -> Product:
    fields: dict[str, object] = {"title": f"Product {pid}", "handle": f"p-{pid}", **kw}
    return Product(
        id=pid,
        variants=tuple(Variant(id=v, price=Decimal(price)) for v in variants),
        **fields,  # type: ignore[arg-type]
    )


async def test_shops_round_trip_and_unique_domain(stores: Stores) -> None:
    shop = Shop(shop_id=new_shop_domain(), ingest_key="npk_a", created_at=NOW)
    await stores.shops.create_shop(shop)
    with pytest.raises(ShopExists):
        await stores.shops.create_shop(replace(shop, ingest_key="npk_b"))
    assert await stores.shops.get_shop(shop.shop_id) == shop
    assert await stores.shops.get_shop(new_shop_domain()) is None

    rotated = replace(
        shop,
        ingest_key="npk_c",
        previous_key="npk_a",
        previous_key_expires_at=NOW,
        require_consent=False,
    )
    await stores.shops.save_shop(rotated)
    assert await stores.shops.get_shop(shop.shop_id) == rotated
    assert shop.shop_id in {s.shop_id for s in await stores.shops.list_shops()}


async def test_admission_claims_ids_and_persists_only_when_asked(stores: Stores) -> None:
    shop = new_shop_domain()
    a, b, c = (event(x, shop_id=shop) for x in ("a", "b", "c"))
    assert await stores.admission.admit(shop, [a, b], persist=True) == set()
    assert await stores.admission.admit(shop, [b, c], persist=False) == {"b"}
    # c was claimed without being stored; promoting it stores it without a second claim.
    assert await stores.admission.admit(shop, [], persist=True, promoted=[c]) == set()
    assert await stores.admission.admit(shop, [a, c], persist=True) == {"a", "c"}
    await settle(stores)
    assert sorted(e.event_id for e in await stores.events.read(shop)) == ["a", "b", "c"]
    # Ids are per shop: another shop may use the same event id.
    other = new_shop_domain()
    assert await stores.admission.admit(other, [event("a", shop_id=other)], persist=True) == set()


async def test_event_store_write_is_idempotent_and_resolves_identity(stores: Stores) -> None:
    shop = new_shop_domain()
    t = NOW - timedelta(hours=1)
    events = [
        event("e1", shop_id=shop, occurred_at=t),
        event(
            "e2",
            shop_id=shop,
            occurred_at=t + timedelta(minutes=1),
            customer_id="42",
            privacy_state="authenticated",
        ),
        event(
            "e3",
            shop_id=shop,
            occurred_at=t + timedelta(minutes=2),
            name="product_added_to_cart",
            quantity=2,
        ),
        event("e4", shop_id=shop, occurred_at=t + timedelta(minutes=3), client_id="c2"),
    ]
    assert await stores.events.write(events) == 4
    assert await stores.events.write([*events, event("e5", shop_id=shop)]) == 1
    assert await stores.events.count(shop) == 5
    assert await stores.events.count(shop, "product_added_to_cart") == 1
    assert await stores.events.customer_of(shop, "c1") == "42"
    assert await stores.events.customer_of(shop, "c2") is None
    read = {e.event_id: e for e in await stores.events.read(shop)}
    assert [read[i].customer_id for i in ("e1", "e2", "e3", "e4")] == [None, "42", "42", None]
    assert read["e3"].quantity == 2 and read["e3"].payload == {"price": 10.0}
    assert read["e1"].occurred_at == t and read["e1"].received_at is not None


async def test_visitor_state_records_holds_and_forgets(stores: Stores) -> None:
    shop = new_shop_domain()
    views = [
        event("v1", shop_id=shop, product_id="1", occurred_at=NOW - timedelta(seconds=3)),
        event("v2", shop_id=shop, product_id="2", occurred_at=NOW - timedelta(seconds=2)),
        event(
            "v3",
            shop_id=shop,
            name="product_added_to_cart",
            product_id="2",
            occurred_at=NOW - timedelta(seconds=1),
            customer_id="9",
        ),
    ]
    await stores.visitors.record(shop, "c1", views, state="guest", ttl_s=600)
    visitor = await stores.visitors.get(shop, "c1")
    assert visitor.recent_views == ("2", "1")
    assert visitor.cart == frozenset({"2"})
    assert visitor.last_seen == NOW - timedelta(seconds=1)
    assert (visitor.customer_id, visitor.privacy_state) == ("9", "guest")

    # A consented visitor's late pending batch is not held: the caller stores it instead.
    assert await stores.visitors.hold_pending(shop, "c1", views[:2], ttl_s=600) is False
    assert await stores.visitors.pending(shop, "c1") == []

    # An undecided one's is, until consent, which marks the session and returns it at once.
    await stores.visitors.record(shop, "c2", views[:1], state="pending", ttl_s=600)
    assert await stores.visitors.hold_pending(shop, "c2", views[:2], ttl_s=600) is True
    assert await stores.visitors.hold_pending(shop, "c2", views[:2], ttl_s=600) is True
    assert [e.event_id for e in await stores.visitors.pending(shop, "c2")] == ["v1", "v2"]
    held = await stores.visitors.consent(shop, "c2", "guest", ttl_s=600)
    assert [e.event_id for e in held] == ["v1", "v2"]  # idempotent holding: one copy each
    c2 = await stores.visitors.get(shop, "c2")
    assert (c2.privacy_state, c2.recent_views) == ("guest", ("1",))  # the session is kept
    # A pending batch finishing after the consent adds its activity but does not downgrade.
    await stores.visitors.record(shop, "c2", views[1:2], state="pending", ttl_s=1)
    c2 = await stores.visitors.get(shop, "c2")
    assert (c2.privacy_state, c2.recent_views) == ("guest", ("2", "1"))
    assert await stores.visitors.hold_pending(shop, "c2", views[2:], ttl_s=600) is False
    await stores.visitors.drop_pending(shop, "c2")
    assert await stores.visitors.pending(shop, "c2") == []
    # Consent with no session yet starts one that says so.
    assert await stores.visitors.consent(shop, "c3", "authenticated", ttl_s=600) == []
    assert (await stores.visitors.get(shop, "c3")).privacy_state == "authenticated"

    assert await stores.visitors.hold_pending(shop, "c4", views[:1], ttl_s=600) is True
    await stores.visitors.forget(shop, "c4")
    await stores.visitors.forget(shop, "c1")
    assert await stores.visitors.pending(shop, "c4") == []
    assert (await stores.visitors.get(shop, "c1")).recent_views == ()


async def test_popularity_decays_by_window(stores: Stores) -> None:
    shop = new_shop_domain()
    day_ago = NOW - timedelta(days=1)
    hits = [
        Hit("fresh", "view", 1.0, NOW),
        Hit("old", "view", 1.5, day_ago),
        Hit("cart-only", "cart", 5.0, NOW),
    ]
    await stores.popularity.add(shop, hits)
    day = dict(await stores.popularity.top(shop, "view", "day", 10, NOW))
    week = dict(await stores.popularity.top(shop, "view", "week", 10, NOW))
    assert list(day) == ["fresh", "old"] and list(week) == ["old", "fresh"]
    assert day["fresh"] == pytest.approx(1.0)
    assert day["old"] == pytest.approx(0.75)  # one half-life old: half of 1.5
    assert week["old"] == pytest.approx(1.5 * 2 ** (-1 / 7))
    assert await stores.popularity.top(shop, "view", "day", 1, NOW) == [
        ("fresh", pytest.approx(1.0))
    ]
    # A day later, with nothing new, everything has halved again.
    later = dict(await stores.popularity.top(shop, "view", "day", 10, NOW + timedelta(days=1)))
    assert later["fresh"] == pytest.approx(0.5)


async def test_popularity_survives_an_epoch_boundary(stores: Stores) -> None:
    shop = new_shop_domain()
    half_life = pop.WINDOWS["hour"]
    boundary = pop.epoch_base(pop.epoch(NOW.timestamp(), half_life) + 1, half_life)
    before = datetime.fromtimestamp(boundary - 60, UTC)
    after = datetime.fromtimestamp(boundary + 60, UTC)
    await stores.popularity.add(shop, [Hit("p", "view", 1.0, before), Hit("q", "view", 1.0, after)])
    scores = dict(await stores.popularity.top(shop, "view", "hour", 10, after))
    assert scores["p"] == pytest.approx(2 ** (-120 / half_life))
    assert scores["q"] == pytest.approx(1.0)


async def test_rate_limiter_windows(stores: Stores) -> None:
    shop = new_shop_domain()
    t = NOW.replace(microsecond=250_000)
    assert await stores.rate_limiter.take(shop, 6, 10, t) is None
    assert await stores.rate_limiter.take(shop, 4, 10, t) is None
    retry = await stores.rate_limiter.take(shop, 1, 10, t)
    assert retry == pytest.approx(0.75)
    assert await stores.rate_limiter.take(shop, 10, 10, t + timedelta(seconds=1)) is None


async def test_catalog_upsert_lookup_and_delete(stores: Stores) -> None:
    shop = new_shop_domain()
    p1 = product("1", "11", "12", tags=("summer", "sale"), collections=("100",), vendor="V")
    p2 = product("2", "21", price="5.50", status="draft")
    await stores.catalog.upsert_products(shop, [p1, p2])
    assert await stores.catalog.get_products(shop, ["1", "2", "3"]) == {"1": p1, "2": p2}
    assert [p.id for p in await stores.catalog.list_products(shop)] == ["1", "2"]
    assert await stores.catalog.products_of_variants(shop, ["11", "21", "99"]) == {
        "11": "1",
        "21": "2",
    }

    p1b = product("1", "13", price="12.00", tags=("winter",))
    await stores.catalog.upsert_products(shop, [p1b])
    assert (await stores.catalog.get_products(shop, ["1"]))["1"].price == Decimal("12.00")
    assert await stores.catalog.products_of_variants(shop, ["11", "13"]) == {"13": "1"}

    assert await stores.catalog.delete_product(shop, "2") is True
    assert await stores.catalog.delete_product(shop, "2") is False
    assert await stores.catalog.products_of_variants(shop, ["21"]) == {}
    assert await stores.catalog.list_products(new_shop_domain()) == []


async def test_schema_migration_is_idempotent(stores: Stores) -> None:
    assert await stores.schema.migrate() == []
    await stores.health.ping()


async def test_collections_stock_and_provisional_products(stores: Stores) -> None:
    from ingest.records import Collection

    shop = new_shop_domain()
    before = (await stores.versions.get(shop)).get("catalog", 0)
    smart = Collection(
        id="7", handle="summer", title="Summer", kind="smart", rules=(("tag", "equals", "summer"),)
    )
    await stores.catalog.upsert_collections(
        shop, [smart, Collection(id="8", handle="a", title="A")]
    )
    assert [c.id for c in await stores.catalog.list_collections(shop)] == ["7", "8"]
    assert (await stores.catalog.list_collections(shop))[0] == smart
    assert await stores.catalog.delete_collection(shop, "8") is True
    assert await stores.catalog.delete_collection(shop, "8") is False

    item = Variant(id="21", price=Decimal("5"), inventory_item_id="900")
    await stores.catalog.upsert_products(
        shop, [Product(id="2", title="P", handle="p", variants=(item,))]
    )
    assert await stores.catalog.variant_of_inventory_item(shop, "900") == ("2", "21")
    assert await stores.catalog.variant_of_inventory_item(shop, "901") is None
    assert await stores.catalog.set_inventory_level(shop, "900", "loc-1", 3) == 3
    assert await stores.catalog.set_inventory_level(shop, "900", "loc-2", 4) == 7
    assert await stores.catalog.set_inventory_level(shop, "900", "loc-1", 0) == 4

    provisional = product("handle:tee", "handle:tee:1", provisional=True, handle="tee")
    await stores.catalog.upsert_products(shop, [provisional])
    assert "handle:tee" in {p.id for p in await stores.catalog.list_products(shop)}
    await stores.catalog.upsert_products(shop, [product("5", "51", handle="tee")])
    assert {p.id for p in await stores.catalog.list_products(shop)} == {"2", "5"}
    assert (await stores.versions.get(shop))["catalog"] >= before + 6


async def test_rules_experiments_stats_and_deliveries(stores: Stores) -> None:
    shop = new_shop_domain()
    assert await stores.merch.rules(shop) is None
    v1 = await stores.merch.save_rules(shop, {"rules": [{"kind": "exclude"}]}, NOW)
    v2 = await stores.merch.save_rules(shop, {"rules": []}, NOW + timedelta(minutes=1))
    assert (v1, v2) == (1, 2)
    assert await stores.merch.rules(shop) == (2, {"rules": []})
    assert await stores.merch.rules(shop, 1) == (1, {"rules": [{"kind": "exclude"}]})
    assert await stores.merch.rules(shop, 3) is None
    assert [v for v, _ in await stores.merch.rule_versions(shop)] == [1, 2]
    assert (await stores.merch.rule_versions(shop))[1][1] == NOW + timedelta(minutes=1)
    assert await stores.merch.rules(new_shop_domain()) is None

    await stores.merch.save_experiment(shop, "exp-b", {"id": "exp-b", "status": "draft"})
    await stores.merch.save_experiment(shop, "exp-a", {"id": "exp-a"})
    await stores.merch.save_experiment(shop, "exp-b", {"id": "exp-b", "status": "running"})
    assert await stores.merch.experiments(shop) == [
        {"id": "exp-a"},
        {"id": "exp-b", "status": "running"},
    ]

    assert await stores.stats.stats(shop, "co_view") is None
    await stores.stats.save_stats(shop, "co_view", b"\x00\x01blob", NOW)
    await stores.stats.save_stats(shop, "co_view", b"newer", NOW + timedelta(hours=1))
    assert await stores.stats.stats(shop, "co_view") == (NOW + timedelta(hours=1), b"newer")

    versions = await stores.versions.get(shop)
    assert (versions["rules"], versions["experiments"], versions["stats"]) == (2, 3, 2)

    assert await stores.deliveries.seen(shop, "wh-1") is False
    await stores.deliveries.record(shop, "wh-1", "products/update", NOW)
    await stores.deliveries.record(shop, "wh-1", "products/update", NOW)
    assert await stores.deliveries.seen(shop, "wh-1") is True
    assert await stores.deliveries.seen(new_shop_domain(), "wh-1") is False
