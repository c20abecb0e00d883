"""ingest/shops.py: shop creation, key rotation with grace, and the cached ShopDirectory."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest import shops
from ingest.errors import NotFound, ShopExists, StoreUnavailable, UnknownShop
from ingest.records import Shop

DOMAIN = "nova-demo.myshopify.com"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


class FakeShopStore:
    """An in-memory ShopStore that counts reads and can be switched off."""

    def __init__(self) -> None:
        self.rows: dict[str, Shop] = {}
        self.reads = 0
        self.down = False

    async def create_shop(self, shop: Shop) -> None:
        if shop.shop_id in self.rows:
            raise ShopExists(shop.shop_id)
        self.rows[shop.shop_id] = shop

    async def get_shop(self, shop_id: str) -> Shop | None:
        self.reads += 1
        if self.down:
            raise StoreUnavailable("fake", ConnectionRefusedError("down"))
        return self.rows.get(shop_id)

    async def list_shops(self) -> list[Shop]:
        return list(self.rows.values())

    async def save_shop(self, shop: Shop) -> None:
        self.rows[shop.shop_id] = shop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()

    class FakeTime:
        monotonic = staticmethod(c.monotonic)

    # Only ShopDirectory's view of time is replaced; asyncio keeps the real clock.
    monkeypatch.setattr(shops, "time", FakeTime)
    return c


@pytest.fixture
def store() -> FakeShopStore:
    return FakeShopStore()


@pytest.fixture
async def shop(store: FakeShopStore) -> Shop:
    return await shops.create_shop(store, DOMAIN, now=T0)


# --- create and rotate ------------------------------------------------------------------------


async def test_create_shop_normalises_the_domain_and_issues_a_key(store: FakeShopStore) -> None:
    created = await shops.create_shop(store, "HTTPS://Nova-Demo.myshopify.com/", now=T0)
    assert created.shop_id == DOMAIN
    assert created.ingest_key.startswith("npk_")
    assert len(created.ingest_key) > 20
    assert created.created_at == T0
    assert created.require_consent is True
    assert created.previous_key is None
    assert store.rows[DOMAIN] == created


async def test_create_shop_without_consent_requirement(store: FakeShopStore) -> None:
    created = await shops.create_shop(store, DOMAIN, now=T0, require_consent=False)
    assert created.require_consent is False


async def test_create_shop_rejects_bad_domains(store: FakeShopStore) -> None:
    with pytest.raises(ValueError):
        await shops.create_shop(store, "example.com", now=T0)
    assert store.rows == {}


def test_new_keys_differ() -> None:
    assert len({shops.new_ingest_key() for _ in range(50)}) == 50


async def test_rotate_key_keeps_the_old_key_for_the_grace_period(
    store: FakeShopStore, shop: Shop
) -> None:
    rotated = await shops.rotate_key(store, DOMAIN, now=T0, grace=timedelta(hours=2))
    assert rotated.ingest_key != shop.ingest_key
    assert rotated.previous_key == shop.ingest_key
    assert rotated.previous_key_expires_at == T0 + timedelta(hours=2)
    assert store.rows[DOMAIN] == rotated
    assert rotated.accepts_key(rotated.ingest_key, T0)
    assert rotated.accepts_key(shop.ingest_key, T0 + timedelta(hours=1))
    assert not rotated.accepts_key(shop.ingest_key, T0 + timedelta(hours=2))


async def test_rotate_key_default_grace_is_a_day(store: FakeShopStore, shop: Shop) -> None:
    rotated = await shops.rotate_key(store, DOMAIN, now=T0)
    assert rotated.previous_key_expires_at == T0 + timedelta(hours=24)


async def test_rotate_key_with_zero_grace_revokes_at_once(store: FakeShopStore, shop: Shop) -> None:
    rotated = await shops.rotate_key(store, DOMAIN, now=T0, grace=timedelta(0))
    assert rotated.previous_key is None
    assert rotated.previous_key_expires_at is None
    assert not rotated.accepts_key(shop.ingest_key, T0)


async def test_rotating_twice_forgets_the_first_key(store: FakeShopStore, shop: Shop) -> None:
    first = await shops.rotate_key(store, DOMAIN, now=T0)
    second = await shops.rotate_key(store, DOMAIN, now=T0 + timedelta(minutes=1))
    assert second.previous_key == first.ingest_key
    assert not second.accepts_key(shop.ingest_key, T0 + timedelta(minutes=2))


async def test_rotate_key_of_unknown_shop(store: FakeShopStore) -> None:
    with pytest.raises(NotFound):
        await shops.rotate_key(store, "ghost.myshopify.com", now=T0)


# --- ShopDirectory ----------------------------------------------------------------------------


async def test_authenticate_returns_the_shop(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    assert await directory.authenticate("Nova-Demo.myshopify.com", shop.ingest_key, T0) == shop


async def test_authenticate_is_cached_within_the_ttl(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    for step in range(5):
        clock.now = 1000.0 + step  # 0..4 s
        await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    assert store.reads == 1
    clock.now = 1005.0
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    assert store.reads == 2


async def test_zero_ttl_reads_every_time(store: FakeShopStore, shop: Shop, clock: Clock) -> None:
    directory = shops.ShopDirectory(store, ttl_s=0)
    for _ in range(3):
        await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    assert store.reads == 3


@pytest.mark.parametrize("key", [None, ""])
async def test_missing_key_is_unknown_shop_without_a_read(
    store: FakeShopStore, shop: Shop, clock: Clock, key: str | None
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    with pytest.raises(UnknownShop, match="missing ingest key"):
        await directory.authenticate(DOMAIN, key, T0)
    assert store.reads == 0


async def test_bad_domain_is_unknown_shop_without_a_read(
    store: FakeShopStore, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    with pytest.raises(UnknownShop, match=r"myshopify\.com"):
        await directory.authenticate("evil.example", "npk_x", T0)
    assert store.reads == 0


async def test_unknown_shop(store: FakeShopStore, clock: Clock) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    with pytest.raises(UnknownShop, match="unknown shop or ingest key"):
        await directory.authenticate("ghost.myshopify.com", "npk_x", T0)


async def test_wrong_key_rereads_at_most_once_a_second(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=60.0)
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    assert store.reads == 1
    clock.now += 0.5
    for _ in range(3):
        with pytest.raises(UnknownShop):
            await directory.authenticate(DOMAIN, "npk_wrong", T0)
    assert store.reads == 1  # the entry is under a second old: no re-read
    clock.now += 1.0
    with pytest.raises(UnknownShop):
        await directory.authenticate(DOMAIN, "npk_wrong", T0)
    assert store.reads == 2


async def test_rotated_key_is_picked_up_before_the_ttl(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=60.0)
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    rotated = await shops.rotate_key(store, DOMAIN, now=T0, grace=timedelta(hours=1))
    clock.now += 2.0  # well inside the TTL, past the one-second re-read limit
    assert await directory.authenticate(DOMAIN, rotated.ingest_key, T0) == rotated
    # The old key keeps working during the grace period, from the refreshed entry.
    reads = store.reads
    assert await directory.authenticate(DOMAIN, shop.ingest_key, T0) == rotated
    assert store.reads == reads
    with pytest.raises(UnknownShop):
        await directory.authenticate(DOMAIN, shop.ingest_key, T0 + timedelta(hours=1))


async def test_revoked_key_is_refused_once_the_entry_expires(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    await shops.rotate_key(store, DOMAIN, now=T0, grace=timedelta(0))
    clock.now += 5.0
    with pytest.raises(UnknownShop):
        await directory.authenticate(DOMAIN, shop.ingest_key, T0)


async def test_new_shop_is_found_after_a_miss(store: FakeShopStore, clock: Clock) -> None:
    directory = shops.ShopDirectory(store, ttl_s=60.0)
    with pytest.raises(UnknownShop):
        await directory.authenticate(DOMAIN, "npk_x", T0)
    created = await shops.create_shop(store, DOMAIN, now=T0)
    clock.now += 1.5
    assert await directory.authenticate(DOMAIN, created.ingest_key, T0) == created


async def test_store_down_falls_back_to_the_cached_entry(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    store.down = True
    clock.now += 3600.0  # far past the TTL
    assert await directory.authenticate(DOMAIN, shop.ingest_key, T0) == shop
    assert store.reads == 2  # it did try the store
    with pytest.raises(UnknownShop):
        await directory.authenticate(DOMAIN, "npk_wrong", T0)


async def test_store_down_without_a_cached_entry_is_unavailable(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    store.down = True
    with pytest.raises(StoreUnavailable):
        await directory.authenticate(DOMAIN, shop.ingest_key, T0)


async def test_store_recovering_refreshes_the_entry(
    store: FakeShopStore, shop: Shop, clock: Clock
) -> None:
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    store.down = True
    clock.now += 10.0
    await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    store.down = False
    store.rows[DOMAIN] = replace(shop, require_consent=False)
    clock.now += 10.0
    refreshed = await directory.authenticate(DOMAIN, shop.ingest_key, T0)
    assert refreshed.require_consent is False


async def test_entries_are_per_shop(store: FakeShopStore, shop: Shop, clock: Clock) -> None:
    other = await shops.create_shop(store, "other.myshopify.com", now=T0)
    directory = shops.ShopDirectory(store, ttl_s=5.0)
    assert await directory.authenticate(DOMAIN, shop.ingest_key, T0) == shop
    assert await directory.authenticate("other.myshopify.com", other.ingest_key, T0) == other
    clock.now += 2.0
    with pytest.raises(UnknownShop):
        await directory.authenticate("other.myshopify.com", shop.ingest_key, T0)
