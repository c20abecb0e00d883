"""Shops and their public ingest keys: creation, rotation, and authentication with a cache."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from datetime import datetime, timedelta

from ingest import ids
from ingest.errors import NotFound, StoreUnavailable, UnknownShop
from ingest.records import Shop
from ingest.stores.base import ShopStore

KEY_PREFIX = "npk_"  # "Nova public key": it ships inside the storefront pixel, so it is not secret


def new_ingest_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


async def create_shop(
    store: ShopStore, domain: str, *, now: datetime, require_consent: bool = True
) -> Shop:
    shop = Shop(
        shop_id=ids.shop_domain(domain),
        ingest_key=new_ingest_key(),
        created_at=now,
        require_consent=require_consent,
    )
    await store.create_shop(shop)
    return shop


async def rotate_key(
    store: ShopStore, domain: str, *, now: datetime, grace: timedelta = timedelta(hours=24)
) -> Shop:
    """Issue a new key. The old one keeps working for `grace`, so pixels that still carry it
    (cached pages, the merchant updating settings) lose nothing; grace=0 revokes it at once."""
    shop = await store.get_shop(ids.shop_domain(domain))
    if shop is None:
        raise NotFound(f"no shop {domain}")
    rotated = replace(
        shop,
        ingest_key=new_ingest_key(),
        previous_key=shop.ingest_key if grace > timedelta(0) else None,
        previous_key_expires_at=now + grace if grace > timedelta(0) else None,
    )
    await store.save_shop(rotated)
    return rotated


class ShopDirectory:
    """Authenticates (shop, key) pairs for ingest without a database round trip per request.

    Entries are re-read after `ttl_s`, so a rotation or a new shop takes effect within seconds;
    a key that does not match forces a re-read, at most once a second per shop. If the store is
    down, the last known entry keeps ingest running rather than turning an outage into lost
    events.
    """

    def __init__(self, store: ShopStore, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Shop | None]] = {}

    async def authenticate(self, shop_domain: str, key: str | None, now: datetime) -> Shop:
        try:
            shop_id = ids.shop_domain(shop_domain)
        except ValueError as exc:
            raise UnknownShop(str(exc)) from None
        if not key:
            raise UnknownShop("missing ingest key (X-Nova-Key header, key parameter or field)")
        shop = await self._lookup(shop_id, fresh=False)
        if shop is None or not shop.accepts_key(key, now):
            shop = await self._lookup(shop_id, fresh=True)
        if shop is None or not shop.accepts_key(key, now):
            raise UnknownShop("unknown shop or ingest key")
        if shop.uninstalled_at is not None:
            raise UnknownShop("the shop has uninstalled Nova")
        return shop

    async def _lookup(self, shop_id: str, *, fresh: bool) -> Shop | None:
        cached = self._cache.get(shop_id)
        age = time.monotonic() - cached[0] if cached else None
        if cached is not None and age is not None and age < self._ttl_s and (not fresh or age < 1):
            return cached[1]
        try:
            shop = await self._store.get_shop(shop_id)
        except StoreUnavailable:
            if cached is not None:
                return cached[1]
            raise
        self._cache[shop_id] = (time.monotonic(), shop)
        return shop
