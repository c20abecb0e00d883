"""The records Nova keeps: normalised, PII-free events; shops; catalog products; visitor state."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The columns of the event store, in order. Training and the writer share this list.
EVENT_COLUMNS = (
    "shop_id",
    "event_id",
    "name",
    "occurred_at",
    "received_at",
    "client_id",
    "customer_id",
    "privacy_state",
    "product_id",
    "variant_id",
    "quantity",
    "order_id",
    "ranking_id",
    "device",
    "country",
    "payload",
)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as Nova stores it: ids normalised, PII dropped, context reduced to a device class.

    `payload` holds the few event-specific facts (line items, collection, query, positions); it
    is built from a whitelist in ingest/normalise.py, never copied from the client.
    """

    shop_id: str
    event_id: str
    name: str
    occurred_at: datetime
    client_id: str
    privacy_state: str
    customer_id: str | None = None
    product_id: str | None = None
    variant_id: str | None = None
    quantity: int | None = None
    order_id: str | None = None
    ranking_id: str | None = None
    device: str | None = None
    country: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None

    def with_state(self, privacy_state: str, customer_id: str | None) -> StoredEvent:
        return replace(self, privacy_state=privacy_state, customer_id=customer_id)

    def to_json(self) -> str:
        # Field by field rather than dataclasses.asdict, whose deep copy was the most expensive
        # step of admitting a batch; the payload is only read here, so it needs no copy.
        d = {name: getattr(self, name) for name in _FIELDS}
        d["occurred_at"] = self.occurred_at.isoformat()
        d["received_at"] = self.received_at.isoformat() if self.received_at else None
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoredEvent:
        d = dict(d)
        d["occurred_at"] = _dt(d["occurred_at"])
        d["received_at"] = _dt(d["received_at"]) if d.get("received_at") else None
        if isinstance(d.get("payload"), str):
            d["payload"] = json.loads(d["payload"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredEvent:
        return cls.from_dict(json.loads(text))


_FIELDS = tuple(f.name for f in fields(StoredEvent))


def _dt(value: str | datetime) -> datetime:
    out = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return out if out.tzinfo else out.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Shop:
    shop_id: str
    ingest_key: str
    created_at: datetime
    require_consent: bool = True
    previous_key: str | None = None
    previous_key_expires_at: datetime | None = None
    currency: str = "USD"  # the shop's currency: prices in the catalog are in it
    uninstalled_at: datetime | None = None  # app/uninstalled: ingest and serving stop

    def accepts_key(self, key: str, now: datetime) -> bool:
        if hmac.compare_digest(key.encode(), self.ingest_key.encode()):
            return True
        return (
            self.previous_key is not None
            and self.previous_key_expires_at is not None
            and now < self.previous_key_expires_at
            and hmac.compare_digest(key.encode(), self.previous_key.encode())
        )


@dataclass(frozen=True, slots=True)
class Visitor:
    """Hot session state of one visitor (a Shopify clientId) in one shop."""

    client_id: str
    recent_views: tuple[str, ...] = ()  # newest first
    cart: frozenset[str] = frozenset()
    last_seen: datetime | None = None
    customer_id: str | None = None
    privacy_state: str | None = None


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str | None = None
    sku: str | None = None
    price: Decimal = Field(ge=0)
    compare_at_price: Decimal | None = None
    available: bool = True
    inventory_quantity: int | None = None
    # Shopify's inventory_policy: "deny" stops selling at 0, "continue" keeps selling.
    inventory_policy: str = "deny"
    # Whether Shopify tracks this variant's stock (inventory_management "shopify").
    tracked: bool = True
    inventory_item_id: str | None = None
    option_values: tuple[str, ...] = ()


class Product(BaseModel):
    """A catalog product in the shape Nova needs; Shopify (webhooks, bulk export) is its source."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    handle: str
    vendor: str | None = None
    product_type: str | None = None
    tags: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    status: str = "active"  # active | draft | archived
    published_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    is_gift_card: bool = False
    image_url: str | None = None
    variants: tuple[Variant, ...] = ()
    # Imported from a CSV export without Shopify's id: kept for content similarity, never
    # served (the storefront cannot resolve it) until a webhook or bulk sync brings the id.
    provisional: bool = False

    @property
    def published(self) -> bool:
        return self.status == "active" and self.published_at is not None

    @property
    def price(self) -> Decimal:
        return min((v.price for v in self.variants), default=Decimal(0))

    @property
    def available(self) -> bool:
        return any(v.available for v in self.variants)

    @property
    def inventory(self) -> int | None:
        """Units in stock over tracked variants; None when no variant is tracked."""
        tracked = [v.inventory_quantity or 0 for v in self.variants if v.tracked]
        return sum(tracked) if tracked else None


class Collection(BaseModel):
    """A collection: custom (members set by hand, known from exports) or smart (members by
    rules, which Nova evaluates itself)."""

    model_config = ConfigDict(frozen=True)

    id: str
    handle: str
    title: str
    kind: str = "custom"  # custom | smart
    rules: tuple[tuple[str, str, str], ...] = ()  # (column, relation, condition)
    disjunctive: bool = False
    published: bool = True
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One fit in the model registry (training/registry.py): a shop's `version` of a model
    `kind`, with what it was fitted on (`data_window`), how it scored (`metrics`) and, if it
    was published, where its files are. JSON fields hold plain JSON values (no NaN)."""

    shop_id: str
    kind: str  # item_knn | ease | als | co_purchase | popularity | reranker
    version: int  # 1, 2, ... per shop and kind; never reused
    status: str  # published | rejected
    config: dict[str, Any]
    data_window: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    artifact_uri: str | None = None  # a URL pyarrow.fs resolves; None when rejected
    reason: str | None = None  # why it was rejected

    @property
    def published(self) -> bool:
        return self.status == "published"
