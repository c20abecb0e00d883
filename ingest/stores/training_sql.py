"""What training may read from the event store, as SQL shared by both backends' exporters.

The privacy rule lives here, once: only events stored with consent (guest, authenticated)
feed a model. Pending activity is never persisted and opted-out visitors send nothing that
is; an erased visitor's rows are deleted (EventStore.erase_visitor). Anonymous orders from
orders/create webhooks carry no visitor at all and only feed co-purchase baskets.

A visitor's rows belong to the customer their client id was last linked to (identity
stitching), so one shopper on two devices is one row of the interaction matrix.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

TRAINABLE_STATES = ("guest", "authenticated")

# Event name -> interaction kind, for the kinds that name a product column.
PRODUCT_EVENTS = {
    "product_viewed": "view",
    "product_added_to_cart": "cart",
    "nova:recommendation_clicked": "click",
}
PURCHASE_EVENT = "checkout_completed"
IMPRESSION_EVENT = "nova:recommendation_viewed"
ORDER_EVENTS = ("checkout_completed", "order_created")

INTERACTION_COLUMNS = ("user", "product_id", "kind", "ts", "ranking_id", "device")
IMPRESSION_COLUMNS = ("ranking_id", "user", "ts", "device", "products")
BASKET_COLUMNS = ("basket", "product_id")


def kind_case(column: str) -> str:
    arms = " ".join(f"WHEN '{name}' THEN '{kind}'" for name, kind in PRODUCT_EVENTS.items())
    return f"CASE {column} {arms} END"


def quoted(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


TYPES = {
    "user": pa.string(),
    "product_id": pa.string(),
    "kind": pa.string(),
    "ts": pa.float64(),
    "ranking_id": pa.string(),
    "device": pa.string(),
    "products": pa.string(),
    "basket": pa.string(),
}


def empty(columns: tuple[str, ...]) -> pa.Table:
    return pa.table({c: pa.array([], type=TYPES[c]) for c in columns})


def product_ids(text: str | None) -> list[str]:
    """The products of a recommendation_viewed payload, in the order they were shown."""
    items: Any = json.loads(text) if text else []
    ordered = sorted(
        (p for p in items if isinstance(p, dict) and p.get("id")),
        key=lambda p: int(p.get("position") or 0),
    )
    return [str(p["id"]) for p in ordered]


def with_product_lists(raw: pa.Table) -> pa.Table:
    """Impressions as a query returns them (the payload's products as JSON text) with the
    products column turned into the ordered list of product ids."""
    products = [product_ids(text) for text in raw.column("products").to_pylist()]
    return raw.set_column(
        raw.schema.get_field_index("products"),
        "products",
        pa.array(products, type=pa.list_(pa.string())),
    )
