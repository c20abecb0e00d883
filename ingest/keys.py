"""Every Redis key Nova uses is built here, by `key`, and nowhere else.

Per-shop keys carry the shop in a hash tag ({shop}) so a shop's keys share a cluster slot.
"""

from __future__ import annotations

# Kinds of per-shop keys.
SEEN = "seen"  # string per event id, TTL = dedupe window
VISITOR = "visitor"  # hash: last_seen, state, customer_id
RECENT = "recent"  # list of product ids viewed, newest first
CART = "cart"  # set of product ids in the cart
PENDING = "pending"  # hash event_id -> event JSON, for visitors without consent yet
POPULARITY = "pop"  # zset product -> forward-decayed score, per signal, window and epoch
RATE = "rate"  # counter per 1 s window
SHOP = "shop"  # JSON mirror of the shop's row (ingest keys), written through from PostgreSQL

# Global keys.
INGEST_STREAM = "ingest"  # the durable ingest buffer (Redis Stream)


def key(prefix: str, shop_id: str | None, kind: str, *parts: str | int) -> str:
    scope = f"{{{shop_id}}}:" if shop_id is not None else ""
    tail = "".join(f":{p}" for p in parts)
    return f"{prefix}:{scope}{kind}{tail}"
