"""What a batch of events does to a visitor's session state, independent of where it is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ingest.records import StoredEvent, Visitor

RECENT_LIMIT = 50


@dataclass
class SessionDelta:
    viewed: list[str] = field(default_factory=list)  # product ids, oldest first
    # Cart operations in event order: ("add" | "remove" | "set", product ids).
    cart_ops: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    last_seen: datetime | None = None
    customer_id: str | None = None


def delta(events: Sequence[StoredEvent]) -> SessionDelta:
    out = SessionDelta()
    for e in sorted(events, key=lambda e: e.occurred_at):
        if e.name == "product_viewed" and e.product_id:
            out.viewed.append(e.product_id)
        elif e.name == "product_added_to_cart" and e.product_id:
            out.cart_ops.append(("add", (e.product_id,)))
        elif e.name == "product_removed_from_cart" and e.product_id:
            out.cart_ops.append(("remove", (e.product_id,)))
        elif e.name == "cart_viewed":
            # The cart as Shopify shows it is the truth; it corrects any missed add/remove.
            out.cart_ops.append(("set", _item_products(e)))
        elif e.name == "checkout_completed":
            out.cart_ops.append(("set", ()))
        out.last_seen = (
            e.occurred_at if out.last_seen is None else max(out.last_seen, e.occurred_at)
        )
        out.customer_id = e.customer_id or out.customer_id
    return out


def apply(visitor: Visitor, d: SessionDelta, state: str) -> Visitor:
    recent = list(visitor.recent_views)
    for product in d.viewed:
        if product in recent:
            recent.remove(product)
        recent.insert(0, product)
    cart = set(visitor.cart)
    for op, products in d.cart_ops:
        if op == "add":
            cart.update(products)
        elif op == "remove":
            cart.difference_update(products)
        else:
            cart = set(products)
    last_seen = visitor.last_seen
    if d.last_seen is not None:
        last_seen = d.last_seen if last_seen is None else max(last_seen, d.last_seen)
    return replace(
        visitor,
        recent_views=tuple(recent[:RECENT_LIMIT]),
        cart=frozenset(cart),
        last_seen=last_seen,
        customer_id=d.customer_id or visitor.customer_id,
        privacy_state=state,
    )


def _item_products(e: StoredEvent) -> tuple[str, ...]:
    items = e.payload.get("items", [])
    return tuple(dict.fromkeys(i["product_id"] for i in items if i.get("product_id")))
