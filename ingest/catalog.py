"""The catalog's webhook topics applied to the stores: Shopify is the source of truth, Nova keeps
a copy shaped for recommending.

Plain Python, no HTTP and no Ray: deployments/webhooks_app.py verifies and routes deliveries,
this module decides what each one changes. Every effect is idempotent (an upsert of the same
payload, a delete of a deleted row, an order claimed by its id), so a redelivery that slips past
the delivery log still has no second effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ingest import ids
from ingest.errors import InvalidRequest
from ingest.records import Collection, Product
from ingest.shopify.orders import order_event
from ingest.shopify.products import (
    collection_from_rest,
    matches,
    product_from_rest,
    variant_available,
)
from ingest.stores.base import Stores

Handler = Callable[[str, dict[str, Any]], Awaitable[str]]


def with_memberships(
    product: Product, current: Iterable[str], smart: Sequence[Collection]
) -> Product:
    """The product in its collections: the custom ones it is in now (`current`; only Shopify
    knows those) and the smart ones whose rules select it (Nova evaluates them itself)."""
    smart_ids = {c.id for c in smart}
    custom = [c for c in current if c not in smart_ids]
    chosen = [c.id for c in smart if matches(c, product)]
    collections = tuple(dict.fromkeys([*custom, *chosen]))
    return product if collections == product.collections else in_collections(product, collections)


def in_collections(product: Product, collections: tuple[str, ...]) -> Product:
    return product.model_copy(update={"collections": collections})


def is_stale(incoming: datetime | None, stored: datetime | None) -> bool:
    """Shopify does not deliver webhooks in order: a payload older than what Nova holds lost a
    race with a newer one and must not undo it."""
    return incoming is not None and stored is not None and incoming < stored


class CatalogService:
    def __init__(self, stores: Stores, clock: Callable[[], datetime] | None = None) -> None:
        self._stores = stores
        self._now = clock or (lambda: datetime.now(UTC))
        self._handlers: dict[str, Handler] = {
            "products/create": self.upsert_product,
            "products/update": self.upsert_product,
            "products/delete": self.delete_product,
            "collections/create": self.upsert_collection,
            "collections/update": self.upsert_collection,
            "collections/delete": self.delete_collection,
            "inventory_levels/update": self.update_inventory,
            "orders/create": self.record_order,
            "app/uninstalled": self.uninstall,
        }

    def handles(self, topic: str) -> bool:
        return topic in self._handlers

    async def apply(self, shop_id: str, topic: str, payload: Any) -> str:
        """Apply one delivery; returns what it did ("stored", "stale", "deleted", ...).
        A payload Shopify would not send raises InvalidRequest; a store outage StoreUnavailable."""
        if not isinstance(payload, dict):
            raise InvalidRequest(f"{topic}: the body must be a JSON object")
        try:
            return await self._handlers[topic](shop_id, payload)
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InvalidRequest(f"{topic}: {detail}") from None

    # --- products ---------------------------------------------------------------------------

    async def upsert_product(self, shop_id: str, payload: dict[str, Any]) -> str:
        product_id = ids.product_id(payload["id"])
        stored = (await self._stores.catalog.get_products(shop_id, [product_id])).get(product_id)
        product = product_from_rest(payload, previous=stored)
        if stored is not None and is_stale(product.updated_at, stored.updated_at):
            return "stale"
        smart = await self._smart_collections(shop_id)
        current = stored.collections if stored is not None else ()
        await self._stores.catalog.upsert_products(
            shop_id, [with_memberships(product, current, smart)]
        )
        return "stored"

    async def delete_product(self, shop_id: str, payload: dict[str, Any]) -> str:
        deleted = await self._stores.catalog.delete_product(shop_id, ids.product_id(payload["id"]))
        return "deleted" if deleted else "absent"

    # --- collections ------------------------------------------------------------------------

    async def upsert_collection(self, shop_id: str, payload: dict[str, Any]) -> str:
        incoming = collection_from_rest(payload)
        known = {c.id: c for c in await self._stores.catalog.list_collections(shop_id)}
        stored = known.get(incoming.id)
        if stored is not None and is_stale(incoming.updated_at, stored.updated_at):
            return "stale"
        if stored is not None and stored.kind == "smart" and "rules" not in payload:
            # A payload without rules says nothing about them (a collection cannot stop being
            # smart on Shopify): keep the rules Nova knows.
            incoming = incoming.model_copy(
                update={"kind": "smart", "rules": stored.rules, "disjunctive": stored.disjunctive}
            )
        await self._stores.catalog.upsert_collections(shop_id, [incoming])
        if incoming.kind != "smart":
            return "stored"  # custom members are set by hand on Shopify; the export brings them
        changed = await self._rematch(shop_id, incoming)
        return f"stored, {changed} product(s) changed membership"

    async def delete_collection(self, shop_id: str, payload: dict[str, Any]) -> str:
        collection_id = ids.shopify_id(payload["id"], "Collection")
        await self._stores.catalog.delete_collection(shop_id, collection_id)
        changed = [
            in_collections(p, tuple(c for c in p.collections if c != collection_id))
            for p in await self._stores.catalog.list_products(shop_id)
            if collection_id in p.collections
        ]
        if changed:
            await self._stores.catalog.upsert_products(shop_id, changed)
        return f"deleted, {len(changed)} product(s) changed membership"

    async def _rematch(self, shop_id: str, collection: Collection) -> int:
        """Recompute one smart collection's members; writes only the products that changed."""
        changed = []
        for p in await self._stores.catalog.list_products(shop_id):
            member, selected = collection.id in p.collections, matches(collection, p)
            if member and not selected:
                changed.append(
                    in_collections(p, tuple(c for c in p.collections if c != collection.id))
                )
            elif selected and not member:
                changed.append(in_collections(p, (*p.collections, collection.id)))
        if changed:
            await self._stores.catalog.upsert_products(shop_id, changed)
        return len(changed)

    async def _smart_collections(self, shop_id: str) -> list[Collection]:
        return [
            c for c in await self._stores.catalog.list_collections(shop_id) if c.kind == "smart"
        ]

    # --- stock, orders, the shop --------------------------------------------------------------

    async def update_inventory(self, shop_id: str, payload: dict[str, Any]) -> str:
        item = ids.shopify_id(payload["inventory_item_id"], "InventoryItem")
        location = ids.shopify_id(payload["location_id"], "Location")
        available = payload.get("available")
        if available is None:
            # Shopify sends null when the item stops being stocked at the location; no number
            # to record, and the next products/update brings the variant's state.
            return "ignored: no quantity"
        if isinstance(available, bool) or not isinstance(available, int):
            raise ValueError(f"available must be an integer, got {available!r}")
        total = await self._stores.catalog.set_inventory_level(shop_id, item, location, available)
        found = await self._stores.catalog.variant_of_inventory_item(shop_id, item)
        if found is None:
            return "recorded; no variant stocked as this item yet"
        product_id, variant_id = found
        product = (await self._stores.catalog.get_products(shop_id, [product_id])).get(product_id)
        if product is None:
            return "recorded; no variant stocked as this item yet"
        variants = tuple(
            v.model_copy(
                update={
                    "inventory_quantity": total,
                    "available": variant_available(v.tracked, v.inventory_policy, total),
                }
            )
            if v.id == variant_id
            else v
            for v in product.variants
        )
        if variants == product.variants:
            return "unchanged"
        await self._stores.catalog.upsert_products(
            shop_id, [product.model_copy(update={"variants": variants})]
        )
        return "stored"

    async def record_order(self, shop_id: str, payload: dict[str, Any]) -> str:
        event = order_event(shop_id, payload)
        # The pixel's durable path: claimed by its id ("order:<id>"), so a second delivery of the
        # same order (a retry under another webhook id) is not stored twice.
        seen = await self._stores.admission.admit(shop_id, [event], persist=True)
        return "duplicate" if event.event_id in seen else "stored"

    async def uninstall(self, shop_id: str, payload: dict[str, Any]) -> str:
        shop = await self._stores.shops.get_shop(shop_id)
        if shop is None:
            return "absent"
        if shop.uninstalled_at is not None:
            return "already uninstalled"
        await self._stores.shops.save_shop(replace(shop, uninstalled_at=self._now()))
        return "uninstalled"
