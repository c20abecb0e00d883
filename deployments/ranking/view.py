"""One shop's catalog as the ranking code reads it: products by index, numpy arrays of what
filters need, content similarity, neighbour tables and a popularity snapshot. Immutable; a
replica builds a new view when the catalog or the statistics change and swaps it in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pydantic_core

from deployments.ranking.content import ContentIndex
from deployments.ranking.cooccurrence import NeighbourTable
from deployments.ranking.shopify_json import (
    json_text,
    minor_units_factor,
    product_json,
    product_path,
)
from ingest.records import Collection, Product

# Collections that group everything or a hand-picked front page: no signal of similarity.
IGNORED_COLLECTION_HANDLES = frozenset({"all", "frontpage"})
TRENDING_WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}


@dataclass(frozen=True)
class Neighbours:
    """A neighbour table re-indexed to the view: per product index, neighbour indices/scores."""

    kind: str
    by_item: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # idx -> (idx, score, support)

    @classmethod
    def build(cls, table: NeighbourTable, index: Mapping[str, int]) -> Neighbours:
        local = np.array([index.get(str(p), -1) for p in table.product_ids], dtype=np.int64)
        by_item = {}
        for row, item in enumerate(local):
            if item < 0:
                continue
            lo, hi = table.indptr[row], table.indptr[row + 1]
            neighbours = local[table.neighbours[lo:hi]]
            known = neighbours >= 0
            if known.any():
                by_item[int(item)] = (
                    neighbours[known],
                    table.scores[lo:hi][known].astype(np.float64),
                    table.support[lo:hi][known],
                )
        return cls(table.kind, by_item)

    def of(self, idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        return self.by_item.get(idx)


@dataclass
class ShopView:
    shop_id: str
    currency: str
    products: list[Product]
    index: dict[str, int]
    price: np.ndarray  # float64, the lowest variant price
    created: np.ndarray  # float64 unix time (0 when unknown)
    servable: np.ndarray  # bool: active, published, priced, not a gift card, not provisional
    available: np.ndarray  # bool: some variant can be sold (continue-selling counts)
    in_stock: np.ndarray  # bool: units on hand (untracked available variants count)
    tags: list[frozenset[str]]
    collections: list[frozenset[str]]
    vendor: list[str]
    product_type: list[str]
    members: dict[str, np.ndarray]  # collection id -> product indices
    content: ContentIndex
    # Each servable product's Shopify JSON, serialised once and without its closing brace, so
    # an answer appends its per-response url and reasons (None: not servable).
    json: list[bytes | None]
    # Each product's storefront path (/products/<handle>), quoted and JSON-escaped once.
    paths: list[bytes]
    neighbours: dict[str, Neighbours] = field(default_factory=dict)
    # Popularity snapshot: per "signal:window", a score per product; "trending" combined.
    popularity: dict[str, np.ndarray] = field(default_factory=dict)
    popularity_at: datetime | None = None
    # Whole-catalog orderings (popular, new arrivals) computed once per view, not per request.
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.products)

    def trending(self) -> np.ndarray:
        return self.popularity.get("trending", np.zeros(self.size))

    def with_popularity(self, scores: Mapping[str, Mapping[str, float]], at: datetime) -> ShopView:
        """A copy with a new snapshot; `scores` maps "signal:window" to product scores."""
        arrays = {}
        for key, by_product in scores.items():
            array = np.zeros(self.size)
            for pid, score in by_product.items():
                i = self.index.get(pid)
                if i is not None:
                    array[i] = score
            arrays[key] = array
        trending = np.zeros(self.size)
        for signal, weight in TRENDING_WEIGHTS.items():
            trending += weight * arrays.get(f"{signal}:day", np.zeros(self.size))
        arrays["trending"] = trending
        return ShopView(**{**self.__dict__, "popularity": arrays, "popularity_at": at, "cache": {}})

    def with_neighbours(self, tables: Sequence[NeighbourTable]) -> ShopView:
        built = {t.kind: Neighbours.build(t, self.index) for t in tables}
        return ShopView(**{**self.__dict__, "neighbours": built, "cache": {}})


def build_view(
    shop_id: str, currency: str, products: Sequence[Product], collections: Sequence[Collection]
) -> ShopView:
    products = sorted(products, key=lambda p: p.id)
    ignored = frozenset(c.id for c in collections if c.handle in IGNORED_COLLECTION_HANDLES)
    factor = minor_units_factor(currency)
    n = len(products)
    servable = np.zeros(n, dtype=bool)
    json: list[bytes | None] = []
    for i, p in enumerate(products):
        ok = (
            p.published
            and not p.is_gift_card
            and not p.provisional
            and p.price > 0
            and p.id.isdigit()
            and all(v.id.isdigit() for v in p.variants)
        )
        servable[i] = ok
        json.append(pydantic_core.to_json(product_json(p, factor))[:-1] if ok else None)
    members: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        for c in p.collections:
            if c not in ignored:
                members.setdefault(c, []).append(i)
    return ShopView(
        shop_id=shop_id,
        currency=currency,
        products=list(products),
        index={p.id: i for i, p in enumerate(products)},
        price=np.array([float(p.price) for p in products], dtype=np.float64),
        created=np.array(
            [p.created_at.timestamp() if p.created_at else 0.0 for p in products], dtype=np.float64
        ),
        servable=servable,
        available=np.array([p.available for p in products], dtype=bool),
        in_stock=np.array([_in_stock(p) for p in products], dtype=bool),
        tags=[frozenset(t.lower() for t in p.tags) for p in products],
        collections=[frozenset(p.collections) for p in products],
        vendor=[(p.vendor or "").lower() for p in products],
        product_type=[(p.product_type or "").lower() for p in products],
        members={c: np.array(ix, dtype=np.int64) for c, ix in members.items()},
        content=ContentIndex(products, ignored),
        json=json,
        paths=[json_text(product_path(p.handle)) for p in products],
    )


def _in_stock(p: Product) -> bool:
    """Units on hand: Shopify's complementary recommendations require it (a product that is
    only "continue selling" at zero stock does not qualify)."""
    return any(
        v.available and (not v.tracked or (v.inventory_quantity or 0) > 0) for v in p.variants
    )
