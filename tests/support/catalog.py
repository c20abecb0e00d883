"""Small catalogs whose right answers are known by construction, for the ranking tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from deployments.ranking.cooccurrence import NeighbourTable, compute
from deployments.ranking.view import ShopView, build_view
from ingest.records import Collection, Product, Variant

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def product(
    pid: int,
    *,
    price: str = "20.00",
    tags: Sequence[str] = (),
    collections: Sequence[str] = (),
    vendor: str = "Acme",
    product_type: str = "Tee",
    title: str | None = None,
    quantity: int | None = 10,
    policy: str = "deny",
    tracked: bool = True,
    status: str = "active",
    published: bool = True,
    gift_card: bool = False,
    age_days: float = 100,
    provisional: bool = False,
) -> Product:
    available = not tracked or policy == "continue" or (quantity or 0) > 0
    created = NOW - timedelta(days=age_days)
    return Product(
        id=f"handle:p{pid}" if provisional else str(pid),
        title=title or f"{product_type} {pid}",
        handle=f"p{pid}",
        vendor=vendor,
        product_type=product_type,
        tags=tuple(tags),
        collections=tuple(collections),
        status=status,
        published_at=created if published else None,
        created_at=created,
        is_gift_card=gift_card,
        provisional=provisional,
        variants=(
            Variant(
                id=str(pid * 10),
                title="Default",
                price=Decimal(price),
                available=available,
                inventory_quantity=quantity,
                inventory_policy=policy,
                tracked=tracked,
            ),
        ),
    )


def view(
    products: Sequence[Product],
    *,
    tables: Sequence[NeighbourTable] = (),
    popularity: dict[str, dict[str, float]] | None = None,
    collections: Sequence[Collection] = (),
    currency: str = "USD",
) -> ShopView:
    v = build_view("shop.myshopify.com", currency, products, collections)
    v = v.with_neighbours(tables)
    return v.with_popularity(popularity or {}, NOW)


def baskets(
    kind: str, groups: Sequence[Sequence[int]], *, measure: str, min_support: int = 2
) -> NeighbourTable:
    pairs = [(f"b{n}", str(p)) for n, group in enumerate(groups) for p in group]
    return compute(kind, pairs, measure=measure, min_support=min_support)


def ids(result: Any, view_: ShopView) -> list[str]:
    return [view_.products[r.idx].id for r in result.products]
