"""Ingest behaviour, run against the embedded (SQLite) and production (PostgreSQL + Redis)
backends alike. A production event counts as stored once the writer has moved it to PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import new_shop_domain
from support import pixel
from support.stores import dump_everything, settle

from config.settings import Settings
from ingest import shops
from ingest.errors import PayloadTooLarge, RateLimited, UnknownShop
from ingest.records import Shop
from ingest.service import IngestResult, IngestService
from ingest.stores.base import Stores, VisitorState


async def make_shop(stores: Stores, require_consent: bool = True) -> Shop:
    return await shops.create_shop(
        stores.shops, new_shop_domain(), now=datetime.now(UTC), require_consent=require_consent
    )


@pytest.fixture
async def shop(stores: Stores) -> Shop:
    return await make_shop(stores)


@pytest.fixture
def service(settings: Settings, stores: Stores) -> IngestService:
    return IngestService(settings, stores)


async def test_standard_events_are_stored_once_with_normalised_ids(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    events = [
        pixel.envelope("page_viewed", {}),
        pixel.product_viewed(101, 1010),
        pixel.product_viewed("101"),
        pixel.collection_viewed(9, [101, 102]),
        pixel.search_submitted("socks", [102]),
        pixel.added_to_cart(101, 2),
        pixel.removed_from_cart(101),
        pixel.cart_viewed([102]),
        pixel.checkout("checkout_started", [(102, 1)]),
        pixel.checkout_completed([(102, 1)]),
        pixel.recommendation_viewed("rk-1", [103, 104]),
        pixel.recommendation_clicked("rk-1", 104, 2),
    ]
    result = await service.ingest(pixel.batch(shop.shop_id, events), shop.ingest_key)
    assert (result.accepted, result.duplicate, result.rejections) == (12, 0, [])
    await settle(stores)

    stored = {e.event_id: e for e in await stores.events.read(shop.shop_id)}
    assert len(stored) == 12
    assert {e.product_id for e in stored.values() if e.name == "product_viewed"} == {"101"}
    assert stored[events[1]["id"]].variant_id == "1010"
    assert stored[events[3]["id"]].payload == {"collection_id": "9", "product_ids": ["101", "102"]}
    assert stored[events[5]["id"]].quantity == 2
    completed = stored[events[9]["id"]]
    assert completed.order_id == "5550001"
    assert completed.country == "GB"
    assert completed.payload["items"] == [
        {"product_id": "102", "variant_id": "1020", "quantity": 1, "price": 19.5}
    ]
    click = stored[events[11]["id"]]
    assert (click.ranking_id, click.product_id, click.payload["position"]) == ("rk-1", "104", 2)
    assert stored[events[10]["id"]].payload["products"][1] == {"id": "104", "position": 2}
    assert stored[events[0]["id"]].payload == {"path": "/products/x"}
    assert all(e.device == "mobile" for e in stored.values())
    assert all(e.privacy_state == "guest" for e in stored.values())


async def test_replayed_batch_stores_nothing_twice(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    events = [pixel.product_viewed(1), pixel.product_viewed(2)]
    body = pixel.batch(shop.shop_id, [*events, events[0]])
    first = await service.ingest(body, shop.ingest_key)
    second = await service.ingest(body, shop.ingest_key)
    await settle(stores)
    assert (first.accepted, first.duplicate) == (2, 1)
    assert (second.accepted, second.duplicate) == (0, 3)
    assert await stores.events.count(shop.shop_id) == 2


async def test_bad_events_are_rejected_with_index_and_reason_and_the_rest_kept(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    now = datetime.now(UTC)
    missing_variant = pixel.envelope("product_viewed", {})
    wrong_kind = pixel.product_viewed("gid://shopify/ProductVariant/5")
    too_old = pixel.product_viewed(7, timestamp=now - timedelta(days=30))
    future = pixel.product_viewed(7, timestamp=now + timedelta(days=3))
    no_client = pixel.product_viewed(7)
    del no_client["clientId"]
    custom = pixel.envelope("form_submitted", {"form": {"id": "newsletter"}}, type="dom")
    body = pixel.batch(
        shop.shop_id,
        [
            missing_variant,
            "not an event",
            wrong_kind,
            too_old,
            future,
            no_client,
            custom,
            pixel.product_viewed(8),
        ],
    )
    result = await service.ingest(body, shop.ingest_key)
    await settle(stores)

    reasons = {r.index: r.reason for r in result.rejections}
    assert sorted(reasons) == [0, 1, 2, 3, 4, 5]
    assert "productVariant" in reasons[0]
    assert "object" in reasons[1]
    assert "ProductVariant" in reasons[2]
    assert "older" in reasons[3] and "future" in reasons[4]
    assert "clientId" in reasons[5]
    assert result.accepted == 2
    stored = await stores.events.read(shop.shop_id)
    assert sorted(e.name for e in stored) == ["form_submitted", "product_viewed"]
    generic = next(e for e in stored if e.name == "form_submitted")
    assert generic.payload == {"type": "dom", "data": {"form": {"id": "newsletter"}}}


async def test_checkout_pii_is_never_stored_anywhere(
    service: IngestService, stores: Stores, settings: Settings
) -> None:
    shop = await make_shop(stores)
    pending_shop = await make_shop(stores)
    events = [pixel.checkout_completed([(5, 1)], customer_id=77), pixel.product_viewed(5)]
    custom = pixel.envelope(
        "newsletter_signup",
        {"email": pixel.PII["email"], "list": "news", "contact": {"phone": pixel.PII["phone"]}},
    )
    await service.ingest(pixel.batch(shop.shop_id, [*events, custom]), shop.ingest_key)
    pending = [pixel.checkout_completed([(6, 1)], client_id="pending-visitor")]
    await service.ingest(
        pixel.batch(pending_shop.shop_id, pending, analytics=None), pending_shop.ingest_key
    )
    await settle(stores)

    everything = await dump_everything(stores, settings.redis_prefix)
    assert "5550001" in everything  # the order id is kept: the dump really covers the stores
    for value in pixel.PII.values():
        assert value not in everything
    assert "ada.lovelace" not in everything and "N1 7AA" not in everything
    assert "iPhone" not in everything  # the user agent is reduced to a device class
    stored = await stores.events.read(shop.shop_id)
    assert next(e for e in stored if e.name == "newsletter_signup").payload["data"] == {
        "list": "news",
        "contact": {},
    }


async def test_opted_out_visitor_leaves_only_anonymous_counts(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    events = [pixel.product_viewed(31, client_id="shy"), pixel.added_to_cart(31, client_id="shy")]
    result = await service.ingest(
        pixel.batch(shop.shop_id, events, analytics=False), shop.ingest_key
    )
    await settle(stores)

    assert result.privacy_state is not None and result.privacy_state.value == "opted_out"
    assert await stores.events.count(shop.shop_id) == 0
    visitor = await stores.visitors.get(shop.shop_id, "shy")
    assert visitor.recent_views == () and visitor.cart == frozenset()
    assert await stores.visitors.pending(shop.shop_id, "shy") == []
    top = await stores.popularity.top(shop.shop_id, "view", "day", 5, datetime.now(UTC))
    assert [p for p, _ in top] == ["31"]


async def test_pending_events_are_promoted_when_consent_arrives(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    first = [pixel.product_viewed(41, client_id="v"), pixel.added_to_cart(41, client_id="v")]
    r1 = await service.ingest(pixel.batch(shop.shop_id, first, analytics=None), shop.ingest_key)
    await settle(stores)
    assert r1.privacy_state is not None and r1.privacy_state.value == "pending"
    assert await stores.events.count(shop.shop_id) == 0
    assert len(await stores.visitors.pending(shop.shop_id, "v")) == 2
    session = await stores.visitors.get(shop.shop_id, "v")
    assert session.recent_views == ("41",) and session.privacy_state == "pending"

    second = [pixel.product_viewed(42, client_id="v")]
    r2 = await service.ingest(pixel.batch(shop.shop_id, second, analytics=True), shop.ingest_key)
    await settle(stores)
    assert (r2.accepted, r2.promoted) == (1, 2)
    stored = await stores.events.read(shop.shop_id)
    assert sorted(e.product_id or "" for e in stored) == ["41", "41", "42"]
    assert {e.privacy_state for e in stored} == {"guest"}
    assert await stores.visitors.pending(shop.shop_id, "v") == []
    # A replay of the pending batch after promotion is a duplicate, not a second copy.
    r3 = await service.ingest(pixel.batch(shop.shop_id, first, analytics=True), shop.ingest_key)
    await settle(stores)
    assert (r3.accepted, r3.duplicate) == (0, 2)
    assert await stores.events.count(shop.shop_id) == 3


async def test_a_pending_batch_delivered_after_consent_is_stored_as_consented(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    """The pixel retries a failed batch with backoff: one built while the shopper had not
    decided can land after a batch that carries their consent. Its events happened before the
    consent, so they are kept as a promoted batch would be, not held for a consent that came."""
    consented = [pixel.product_viewed(51, client_id="w")]
    await service.ingest(pixel.batch(shop.shop_id, consented, analytics=True), shop.ingest_key)
    late = [pixel.product_viewed(50, client_id="w"), pixel.added_to_cart(50, client_id="w")]
    result = await service.ingest(pixel.batch(shop.shop_id, late, analytics=None), shop.ingest_key)
    await settle(stores)
    # Reported as promoted: a client counting what is durable adds promoted events to
    # accepted ones of consented batches only (bench/loadgen.py does).
    assert (result.accepted, result.promoted, result.duplicate) == (0, 2, 0)
    stored = await stores.events.read(shop.shop_id)
    assert sorted(e.product_id or "" for e in stored) == ["50", "50", "51"]
    assert {e.privacy_state for e in stored} == {"guest"}
    assert await stores.visitors.pending(shop.shop_id, "w") == []
    session = await stores.visitors.get(shop.shop_id, "w")
    assert session.privacy_state == "guest" and set(session.recent_views) == {"50", "51"}
    # A retry of that batch is a duplicate, not a second copy.
    again = await service.ingest(pixel.batch(shop.shop_id, late, analytics=None), shop.ingest_key)
    await settle(stores)
    assert (again.accepted, again.promoted, again.duplicate) == (0, 0, 2)
    assert await stores.events.count(shop.shop_id) == 3

    # After a refusal nothing is kept about the shopper: a late pending batch is only held.
    refused = [pixel.product_viewed(61, client_id="x")]
    await service.ingest(pixel.batch(shop.shop_id, refused, analytics=False), shop.ingest_key)
    late = [pixel.product_viewed(60, client_id="x")]
    await service.ingest(pixel.batch(shop.shop_id, late, analytics=None), shop.ingest_key)
    await settle(stores)
    assert await stores.events.count(shop.shop_id) == 3
    assert len(await stores.visitors.pending(shop.shop_id, "x")) == 1


async def test_pending_and_consenting_batches_racing_lose_nothing(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    """A shopper's undecided batch and their consenting one, handled at the same time (two
    replicas, or one replica between awaits): whichever order the steps interleave in, both
    batches' events end up stored and nothing is left held."""
    clients = [f"r{n}" for n in range(40)]

    async def pair(client: str) -> int:
        """What the two answers say is durable: accepted events of the consenting batch, and
        promoted ones of either."""
        undecided = [pixel.product_viewed(70, client_id=client)]
        consenting = [pixel.product_viewed(71, client_id=client)]
        held, consented = await asyncio.gather(
            service.ingest(pixel.batch(shop.shop_id, undecided, analytics=None), shop.ingest_key),
            service.ingest(pixel.batch(shop.shop_id, consenting, analytics=True), shop.ingest_key),
        )
        return consented.accepted + consented.promoted + held.promoted

    durable = await asyncio.gather(*(pair(c) for c in clients))
    await settle(stores)
    assert await stores.events.count(shop.shop_id) == 2 * len(clients) == sum(durable)
    for client in clients:
        assert await stores.visitors.pending(shop.shop_id, client) == []
        # Nor is a session left saying pending by a batch that finished after the consent,
        # which would hold the client's next late batch again.
        assert (await stores.visitors.get(shop.shop_id, client)).privacy_state == "guest"


async def test_a_pending_batch_finishing_after_the_consent_leaves_the_session_consented(
    settings: Settings, stores: Stores, shop: Shop
) -> None:
    """The interleaving the race above can produce, made certain: the undecided batch holds
    its events, then the consenting batch runs from start to end, then the undecided batch
    records its session update. The session must still say consented, so that the client's
    next late batch is stored at once rather than held again."""
    service = IngestService(settings, stores)

    class ConsentDuringHold:
        def __init__(self, inner: VisitorState) -> None:
            self._inner = inner
            self.consented: IngestResult | None = None

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        async def hold_pending(self, *args: Any, **kwargs: Any) -> bool:
            held = await self._inner.hold_pending(*args, **kwargs)
            if self.consented is None:
                consenting = [pixel.product_viewed(81, client_id="y")]
                self.consented = await service.ingest(
                    pixel.batch(shop.shop_id, consenting, analytics=True), shop.ingest_key
                )
            return held

    visitors = ConsentDuringHold(stores.visitors)
    racing = IngestService(settings, dataclasses.replace(stores, visitors=visitors))  # type: ignore[arg-type]
    undecided = [pixel.product_viewed(80, client_id="y")]
    held = await racing.ingest(
        pixel.batch(shop.shop_id, undecided, analytics=None), shop.ingest_key
    )
    await settle(stores)
    assert visitors.consented is not None
    assert (held.accepted, visitors.consented.promoted) == (1, 1)
    session = await stores.visitors.get(shop.shop_id, "y")
    assert session.privacy_state == "guest" and set(session.recent_views) == {"80", "81"}

    late = [pixel.product_viewed(82, client_id="y")]
    result = await service.ingest(pixel.batch(shop.shop_id, late, analytics=None), shop.ingest_key)
    await settle(stores)
    assert (result.accepted, result.promoted) == (0, 1)
    assert await stores.visitors.pending(shop.shop_id, "y") == []
    assert await stores.events.count(shop.shop_id) == 3


async def test_pending_events_are_discarded_on_refusal_or_expiry(
    make_settings: object, stores: Stores
) -> None:
    settings = make_settings(NOVA_PENDING_TTL_S="1")  # type: ignore[operator]
    service = IngestService(settings, stores)
    shop = await make_shop(stores)
    await service.ingest(
        pixel.batch(shop.shop_id, [pixel.product_viewed(1, client_id="a")], analytics=None),
        shop.ingest_key,
    )
    await service.ingest(
        pixel.batch(shop.shop_id, [pixel.product_viewed(2, client_id="a")], analytics=False),
        shop.ingest_key,
    )
    assert await stores.visitors.pending(shop.shop_id, "a") == []
    assert (await stores.visitors.get(shop.shop_id, "a")).recent_views == ()

    await service.ingest(
        pixel.batch(shop.shop_id, [pixel.product_viewed(3, client_id="b")], analytics=None),
        shop.ingest_key,
    )

    await asyncio.sleep(2.1)
    result = await service.ingest(
        pixel.batch(shop.shop_id, [pixel.product_viewed(4, client_id="b")]), shop.ingest_key
    )
    await settle(stores)
    assert result.promoted == 0
    assert [e.product_id for e in await stores.events.read(shop.shop_id)] == ["4"]


async def test_customer_id_links_the_client_from_that_moment_on(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    before = pixel.product_viewed(1, client_id="phone", timestamp=t0)
    login = pixel.product_viewed(2, client_id="phone", timestamp=t0 + timedelta(minutes=1))
    after = pixel.product_viewed(3, client_id="phone", timestamp=t0 + timedelta(minutes=2))
    await service.ingest(pixel.batch(shop.shop_id, [before]), shop.ingest_key)
    r = await service.ingest(pixel.batch(shop.shop_id, [login], customer_id=9001), shop.ingest_key)
    await service.ingest(pixel.batch(shop.shop_id, [after]), shop.ingest_key)
    await settle(stores)

    assert r.privacy_state is not None and r.privacy_state.value == "authenticated"
    assert await stores.events.customer_of(shop.shop_id, "phone") == "9001"
    owners = {e.product_id: e.customer_id for e in await stores.events.read(shop.shop_id)}
    assert owners == {"1": None, "2": "9001", "3": "9001"}


async def test_shop_without_consent_requirement_treats_unknown_consent_as_guest(
    service: IngestService, stores: Stores
) -> None:
    shop = await make_shop(stores, require_consent=False)
    r = await service.ingest(
        pixel.batch(shop.shop_id, [pixel.product_viewed(1)], analytics=None), shop.ingest_key
    )
    await settle(stores)
    assert r.privacy_state is not None and r.privacy_state.value == "guest"
    assert await stores.events.count(shop.shop_id) == 1


async def test_session_state_follows_views_and_cart(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    t = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        pixel.product_viewed(1, timestamp=t),
        pixel.product_viewed(2, timestamp=t + timedelta(seconds=1)),
        pixel.product_viewed(1, timestamp=t + timedelta(seconds=2)),
        pixel.added_to_cart(1, timestamp=t + timedelta(seconds=3)),
        pixel.added_to_cart(2, timestamp=t + timedelta(seconds=4)),
        pixel.removed_from_cart(1, timestamp=t + timedelta(seconds=5)),
    ]
    await service.ingest(pixel.batch(shop.shop_id, events), shop.ingest_key)
    visitor = await stores.visitors.get(shop.shop_id, "client-1")
    assert visitor.recent_views == ("1", "2")
    assert visitor.cart == frozenset({"2"})
    assert visitor.last_seen == t + timedelta(seconds=5)

    await service.ingest(
        pixel.batch(shop.shop_id, [pixel.checkout_completed([(2, 1)])]), shop.ingest_key
    )
    assert (await stores.visitors.get(shop.shop_id, "client-1")).cart == frozenset()


async def test_authentication_and_key_rotation(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    body = pixel.batch(shop.shop_id, [pixel.product_viewed(1)])
    with pytest.raises(UnknownShop):
        await service.ingest(body, "npk_wrong")
    with pytest.raises(UnknownShop):
        await service.ingest({**body, "shop": new_shop_domain()}, shop.ingest_key)
    with pytest.raises(UnknownShop):
        await service.ingest(body, None)
    assert (await service.ingest({**body, "key": shop.ingest_key})).accepted == 1

    now = datetime.now(UTC)
    rotated = await shops.rotate_key(stores.shops, shop.shop_id, now=now)
    fresh_service = IngestService(service._settings, stores)  # no cached entry
    assert (
        await fresh_service.ingest(
            pixel.batch(shop.shop_id, [pixel.product_viewed(2)]), shop.ingest_key
        )
    ).accepted == 1
    assert (
        await fresh_service.ingest(
            pixel.batch(shop.shop_id, [pixel.product_viewed(3)]), rotated.ingest_key
        )
    ).accepted == 1
    await shops.rotate_key(stores.shops, shop.shop_id, now=now, grace=timedelta(0))
    revoked = IngestService(service._settings, stores)
    with pytest.raises(UnknownShop):
        await revoked.ingest(pixel.batch(shop.shop_id, [pixel.product_viewed(4)]), shop.ingest_key)


async def test_batch_size_and_rate_limits(make_settings: object, stores: Stores) -> None:
    settings = make_settings(  # type: ignore[operator]
        NOVA_MAX_BATCH_EVENTS="10", NOVA_RATE_LIMIT_EVENTS_PER_S="25"
    )
    frozen = datetime.now(UTC).replace(microsecond=100_000)
    service = IngestService(settings, stores, clock=lambda: frozen)
    shop = await make_shop(stores)
    with pytest.raises(PayloadTooLarge):
        await service.ingest(
            pixel.batch(shop.shop_id, [pixel.product_viewed(i) for i in range(1, 12)]),
            shop.ingest_key,
        )
    ten = lambda: pixel.batch(shop.shop_id, [pixel.product_viewed(i) for i in range(1, 11)])  # noqa: E731
    await service.ingest(ten(), shop.ingest_key)
    await service.ingest(ten(), shop.ingest_key)
    with pytest.raises(RateLimited) as limited:
        await service.ingest(ten(), shop.ingest_key)
    assert 0 < limited.value.retry_after_s <= 1
    later = IngestService(settings, stores, clock=lambda: frozen + timedelta(seconds=1))
    assert (await later.ingest(ten(), shop.ingest_key)).accepted == 10
