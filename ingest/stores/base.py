"""The store interfaces. Each has a PostgreSQL/Redis backend and an embedded SQLite backend, and
one behaviour test suite (tests/stores/) runs against both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from ingest.records import Collection, ModelRow, Product, Shop, StoredEvent, Visitor


class ShopStore(Protocol):
    async def create_shop(self, shop: Shop) -> None:
        """Raises ShopExists if the domain is taken."""

    async def get_shop(self, shop_id: str) -> Shop | None: ...

    async def list_shops(self) -> list[Shop]: ...

    async def save_shop(self, shop: Shop) -> None:
        """Replace an existing shop's row (key rotation, settings)."""


class Admission(Protocol):
    """The durable front door: deduplicate event ids and make new events durable, atomically.

    Production: a Lua script marks ids seen in Redis and appends the new events to a Redis
    Stream in one step. Embedded: one SQLite transaction. Either way, when `admit` returns the
    events it did not report as duplicates are durable; when it raises StoreUnavailable nothing
    was claimed, so the client's retry is not mistaken for a duplicate.
    """

    async def admit(
        self,
        shop_id: str,
        events: Sequence[StoredEvent],
        *,
        persist: bool,
        promoted: Sequence[StoredEvent] = (),
    ) -> set[str]:
        """Claim `events` by id; persist the unclaimed ones if `persist`. `promoted` events were
        claimed earlier (while pending) and are persisted without a second claim.
        Returns the ids of `events` that had been seen before."""


class EventStore(Protocol):
    """The append-only event store (PostgreSQL partitioned table, or SQLite)."""

    async def write(self, events: Sequence[StoredEvent]) -> int:
        """Store events not stored before (by shop and event id) and the identity links they
        carry. Idempotent. Returns how many were new."""

    async def count(self, shop_id: str, name: str | None = None) -> int: ...

    async def read(self, shop_id: str, *, limit: int = 10_000) -> list[StoredEvent]:
        """Oldest first."""

    async def customer_of(self, shop_id: str, client_id: str) -> str | None:
        """The customer a client id was last linked to (identity stitching), if any."""

    async def erase_visitor(self, shop_id: str, client_id: str) -> int:
        """Delete every stored event of a client id and its identity links; returns the
        number of events deleted."""

    async def basket_items(self, shop_id: str, kind: str, since: datetime) -> list[tuple[str, str]]:
        """(basket, product id) pairs since a time, for co-occurrence statistics.
        kind "view" / "cart": a basket is one visitor's day of product views / add-to-carts;
        kind "purchase": a basket is one order (checkout_completed and orders/create of the
        same order share it)."""


class TrainingData(Protocol):
    """What model training reads, as pyarrow tables (ingest/stores/training_sql.py holds the
    privacy rule: only events stored with consent). Times are UTC seconds since the epoch."""

    async def interactions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        """user, product_id, kind (view / cart / purchase / click), ts, ranking_id, device."""

    async def impressions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        """ranking_id, user, ts, device, products (the ids shown, in order)."""

    async def baskets(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        """basket, product_id: the products of each order (anonymous orders included)."""

    async def count(self, shop_id: str, since: datetime, until: datetime) -> int:
        """Events stored (received) in a time range, of any kind: is a refit worth it."""


class VisitorState(Protocol):
    """Hot, expiring state of visitors: what a session did, and pending visitors' events."""

    async def record(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, state: str, ttl_s: int
    ) -> None:
        """Fold events into the visitor's recent views, cart and last activity.

        A `pending` record on a consented session (a batch from before the consent that
        finished after it) keeps the session's state and its longer TTL."""

    async def get(self, shop_id: str, client_id: str) -> Visitor: ...

    async def get_many(self, shop_id: str, client_ids: Sequence[str]) -> list[Visitor]:
        """Several visitors in one round trip (a client and its customer, for serving)."""

    async def hold_pending(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, ttl_s: int
    ) -> bool:
        """Keep a pending visitor's events until consent arrives or the TTL runs out; unless
        the visitor's session says they consented already (a late batch): then nothing is held
        and the result is False. Atomic with `consent`: of a hold and a consent racing, either
        the hold sees the consent or the consent returns the held events."""

    async def consent(
        self, shop_id: str, client_id: str, state: str, *, ttl_s: int
    ) -> list[StoredEvent]:
        """Mark the visitor's session consented (`state`: guest or authenticated) and return the
        events held for them, in one atomic step (see hold_pending)."""

    async def pending(self, shop_id: str, client_id: str) -> list[StoredEvent]: ...

    async def drop_pending(self, shop_id: str, client_id: str) -> None: ...

    async def forget(self, shop_id: str, client_id: str) -> None:
        """Remove everything held about the visitor (opt-out)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One anonymous popularity increment."""

    product_id: str
    signal: str  # view | cart | purchase | click
    weight: float
    at: datetime


class Popularity(Protocol):
    """Time-decayed popularity per shop, signal, decay window and product (ingest/popularity.py)."""

    async def add(self, shop_id: str, hits: Sequence[Hit]) -> None: ...

    async def top(
        self, shop_id: str, signal: str, window: str, k: int, now: datetime
    ) -> list[tuple[str, float]]: ...


class RateLimiter(Protocol):
    async def take(self, shop_id: str, n: int, limit_per_s: int, now: datetime) -> float | None:
        """Take n units; None if allowed, else seconds until the window resets."""


class CatalogStore(Protocol):
    """Products, collections and stock. Every change bumps the shop's "catalog" version."""

    async def upsert_products(self, shop_id: str, products: Sequence[Product]) -> None:
        """Insert or replace; a product with Shopify's id replaces a provisional one with the
        same handle (ingest/shopify/csv_export.py)."""

    async def delete_product(self, shop_id: str, product_id: str) -> bool: ...

    async def get_products(
        self, shop_id: str, product_ids: Sequence[str]
    ) -> dict[str, Product]: ...

    async def list_products(self, shop_id: str) -> list[Product]: ...

    async def products_of_variants(
        self, shop_id: str, variant_ids: Sequence[str]
    ) -> dict[str, str]: ...

    async def upsert_collections(self, shop_id: str, collections: Sequence[Collection]) -> None: ...

    async def delete_collection(self, shop_id: str, collection_id: str) -> bool: ...

    async def list_collections(self, shop_id: str) -> list[Collection]: ...

    async def set_inventory_level(
        self, shop_id: str, inventory_item_id: str, location_id: str, available: int
    ) -> int:
        """Record one location's stock of an item; returns the item's total over locations."""

    async def variant_of_inventory_item(
        self, shop_id: str, inventory_item_id: str
    ) -> tuple[str, str] | None:
        """(product id, variant id) of the variant stocked as this inventory item."""


class Versions(Protocol):
    """Change counters per shop and kind ("catalog", "rules", "experiments", "stats",
    "models"), which serving replicas poll to reload only what changed."""

    async def get(self, shop_id: str) -> dict[str, int]: ...


class MerchStore(Protocol):
    """Merchant configuration: versioned rule sets and experiments, as JSON documents whose
    shape the ranking package owns (deployments/ranking/rules.py, experiments.py)."""

    async def save_rules(self, shop_id: str, doc: dict[str, Any], at: datetime) -> int:
        """Store a new rule-set version; returns its number (1, 2, ...)."""

    async def rules(
        self, shop_id: str, version: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        """The given version, or the latest; None if the shop has none."""

    async def rule_versions(self, shop_id: str) -> list[tuple[int, datetime]]: ...

    async def save_experiment(
        self, shop_id: str, experiment_id: str, doc: dict[str, Any]
    ) -> None: ...

    async def experiments(self, shop_id: str) -> list[dict[str, Any]]: ...


class StatsStore(Protocol):
    """Statistics computed from events (co-occurrence neighbour tables), one blob per kind."""

    async def save_stats(self, shop_id: str, kind: str, blob: bytes, at: datetime) -> None: ...

    async def stats(self, shop_id: str, kind: str) -> tuple[datetime, bytes] | None: ...


class ModelStore(Protocol):
    """The model registry's rows and pins (training/registry.py keeps the artifacts). Adding a
    published row and every pin change bump the shop's "models" version."""

    async def next_version(self, shop_id: str, kind: str) -> int:
        """Hand out the next version number of a kind (1, 2, ...): atomic, so concurrent
        callers in any process get distinct numbers, and never reused."""

    async def add(self, row: ModelRow) -> None:
        """Record a fit; AlreadyExists if its version was recorded before."""

    async def rows(self, shop_id: str, kind: str | None = None) -> list[ModelRow]:
        """Newest first (by creation time, then version)."""

    async def get(self, shop_id: str, kind: str, version: int) -> ModelRow | None: ...

    async def pin(self, shop_id: str, kind: str, version: int | None) -> None:
        """Make `version` serve instead of the newest published version; None unpins.
        NotFound unless `version` is a published version of `kind`."""

    async def pins(self, shop_id: str) -> dict[str, int]:
        """Pinned version per kind."""


class DeliveryLog(Protocol):
    """Webhook deliveries already handled (X-Shopify-Webhook-Id)."""

    async def seen(self, shop_id: str, webhook_id: str) -> bool: ...

    async def record(self, shop_id: str, webhook_id: str, topic: str, at: datetime) -> None: ...


class Health(Protocol):
    async def ping(self) -> None:
        """Raise StoreUnavailable if the backing server cannot be reached."""


class Schema(Protocol):
    async def migrate(self) -> list[int]:
        """Apply pending schema migrations (idempotent); returns the versions applied."""


@dataclass
class Stores:
    """Everything the services need, opened from Settings by ingest.stores.open_stores."""

    backend: str
    shops: ShopStore
    admission: Admission
    events: EventStore
    training: TrainingData
    visitors: VisitorState
    popularity: Popularity
    rate_limiter: RateLimiter
    catalog: CatalogStore
    merch: MerchStore
    stats: StatsStore
    models: ModelStore
    versions: Versions
    deliveries: DeliveryLog
    health: Health
    schema: Schema
    closers: list[object]

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer.close()  # type: ignore[attr-defined]
