"""Candidate sources. Each returns product indices with scores, best first; the engine chains
them per intent (strategy, then content-similar, then popular in the same collection, then
popular in the shop) so an answer is never empty while eligible products exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deployments.ranking.view import ShopView

RECENCY_DECAY = 0.85  # weight of the n-th most recent view: 0.85^n


@dataclass(frozen=True)
class Candidates:
    source: str
    idx: np.ndarray  # int64
    scores: np.ndarray  # float64, > 0, best first
    anchors: np.ndarray | None = None  # per candidate, the product index it came from
    sources: list[str] | None = None  # per candidate, when several sources were blended
    model: str | None = None  # the model that ordered them, if one did (the re-ranker)

    def source_at(self, n: int) -> str:
        return self.sources[n] if self.sources is not None else self.source


EMPTY = np.zeros(0, dtype=np.int64)


def _combine(
    source: str, idx: np.ndarray, contributions: np.ndarray, anchors: np.ndarray
) -> Candidates:
    """Sum contributions per product (numpy, no Python loop over neighbours); each product
    keeps the anchor of its largest contribution. Best first, ties by index."""
    if not len(idx):
        return Candidates(source, EMPTY, np.zeros(0))
    products, inverse, largest = _grouped(idx, contributions)
    totals = np.bincount(inverse, weights=contributions)
    ranked = np.lexsort((products, -totals))
    return Candidates(
        source, products[ranked].astype(np.int64), totals[ranked], anchors[largest[ranked]]
    )


def neighbours(view: ShopView, kind: str, anchors: Sequence[tuple[int, float]]) -> Candidates:
    """Neighbours of weighted anchor products in one table, scores summed over anchors."""
    table = view.neighbours.get(kind)
    found = [(table.of(a), a, w) for a, w in anchors] if table is not None else []
    rows = [(f, a, w) for f, a, w in found if f is not None]
    if not rows:
        return Candidates(kind, EMPTY, np.zeros(0))
    idx = np.concatenate([f[0] for f, _, _ in rows])
    contributions = np.concatenate([f[1] * w for f, _, w in rows])
    origin = np.concatenate([np.full(len(f[0]), a, dtype=np.int64) for f, a, _ in rows])
    return _combine(kind, idx, contributions, origin)


def blend(
    view: ShopView, source: str, weights: dict[str, float], anchors: Sequence[tuple[int, float]]
) -> Candidates:
    """Several neighbour tables blended: per table, each product's contributions from the
    weighted anchors are summed and scaled by the table's best total; the blend is the
    weighted sum of those. A product keeps the table (source) and anchor of its largest
    contribution (reported in its reasons). Ties go to the earlier table, then anchor.

    One pass over every (table, anchor) row at once: the answers are small, so the cost is
    numpy's per-call overhead, and a table-by-table pass made four times the calls."""
    kinds = [k for k, w in weights.items() if w > 0 and k in view.neighbours]
    found = []  # (table number, row, anchor, anchor weight), table by table
    for n, kind in enumerate(kinds):
        by_item = view.neighbours[kind].by_item
        for a, w in anchors:
            row = by_item.get(a)
            if row is not None:
                found.append((n, row, a, w))
    if not found:
        return Candidates(source, EMPTY, np.zeros(0))
    size = view.size
    # Per-row constants spread over each row's entries with one np.repeat apiece: a multiply
    # or np.full per row cost ~70 numpy calls for eight viewed products in three tables.
    lengths = [len(r[0]) for _, r, _, _ in found]
    # Entries keyed by (table, product): the table's number times the catalog size, plus it.
    keys = np.concatenate([r[0] for _, r, _, _ in found]) + np.array(
        [n * size for n, _, _, _ in found], dtype=np.int64
    ).repeat(lengths)
    contributions = np.concatenate([r[1] for _, r, _, _ in found]) * np.array(
        [w for _, _, _, w in found], dtype=np.float64
    ).repeat(lengths)
    origin = np.array([a for _, _, a, _ in found], dtype=np.int64).repeat(lengths)
    groups, inverse, largest = _grouped(keys, contributions)  # groups: by table, then product
    totals = np.bincount(inverse, weights=contributions)
    present = sorted({n for n, _, _, _ in found})
    if len(present) == 1:  # one table: its products are distinct, no second grouping
        only = present[0]
        scaled = weights[kinds[only]] * totals / totals.max()
        products = groups - only * size
        ranked = np.lexsort((products, -scaled))
        return Candidates(
            source,
            products[ranked],
            scaled[ranked],
            origin[largest[ranked]],
            [kinds[only]] * len(ranked),
        )
    table = groups // size
    starts = np.searchsorted(groups, np.array(present, dtype=np.int64) * size)  # per table
    weight, best_total = np.zeros(len(kinds)), np.ones(len(kinds))  # per table
    weight[present] = [weights[kinds[t]] for t in present]
    best_total[present] = np.maximum.reduceat(totals, starts)
    scaled = weight[table] * totals / best_total[table]
    products, by_product, best = _grouped(groups % size, scaled)
    summed = np.bincount(by_product, weights=scaled)
    ranked = np.lexsort((products, -summed))
    chosen = best[ranked]
    return Candidates(
        source,
        products[ranked],
        summed[ranked],
        origin[largest][chosen],
        np.array(kinds, dtype=object)[table[chosen]].tolist(),
    )


def _grouped(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries grouped by key: the sorted distinct keys, each entry's group, and per group the
    position of its largest value (the first such entry on a tie). np.unique plus a second
    sort would do the same at twice the cost on the short arrays answers are made of."""
    order = np.lexsort((-values, keys))  # stable: equal values keep their entry order
    ordered = keys[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(ordered), dtype=np.int64)
    inverse[order] = first.cumsum() - 1
    starts = order[first]
    return keys[starts], inverse, starts


def content(view: ShopView, anchor: int, k: int = 200) -> Candidates:
    idx, scores = view.content.similar(anchor, k)
    return Candidates("content", idx, scores, np.full(len(idx), anchor, dtype=np.int64))


def by_score(
    source: str, view: ShopView, scores: np.ndarray, pool: np.ndarray | None = None
) -> Candidates:
    """Products ordered by a per-product score (popularity, recency), ties by index; a tiny
    floor keeps never-seen products in the order so the chain can always fill an answer."""
    idx = np.flatnonzero(view.servable) if pool is None else pool[view.servable[pool]]
    values = scores[idx]
    order = np.lexsort((idx, -values))
    return Candidates(source, idx[order].astype(np.int64), np.maximum(values[order], 1e-9))


def _cached(view: ShopView, name: str, scores: np.ndarray) -> Candidates:
    found = view.cache.get(name)
    if found is None:
        found = view.cache[name] = by_score(name, view, scores)
    return found


def popular(view: ShopView) -> Candidates:
    return _cached(view, "popular", view.trending())


def trending(view: ShopView) -> Candidates:
    return _cached(view, "trending", view.trending())


def new_arrivals(view: ShopView) -> Candidates:
    return _cached(view, "new_arrivals", view.created)


def collection_popular(view: ShopView, anchor: int) -> Candidates:
    members = [view.members[c] for c in view.collections[anchor] if c in view.members]
    if not members:
        return Candidates("collection_popular", EMPTY, np.zeros(0))
    pool = np.unique(np.concatenate(members))
    found = by_score("collection_popular", view, view.trending(), pool)
    return Candidates(
        found.source, found.idx, found.scores, np.full(len(found.idx), anchor, dtype=np.int64)
    )


def recently_viewed(recent: Sequence[int]) -> Candidates:
    idx = np.array(list(dict.fromkeys(recent)), dtype=np.int64)
    return Candidates("recently_viewed", idx, RECENCY_DECAY ** np.arange(len(idx), dtype=float))


def weighted_recent(recent: Sequence[int]) -> list[tuple[int, float]]:
    return [(i, RECENCY_DECAY**n) for n, i in enumerate(dict.fromkeys(recent))]
