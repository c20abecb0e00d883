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

    def source_at(self, n: int) -> str:
        return self.sources[n] if self.sources is not None else self.source


EMPTY = np.zeros(0, dtype=np.int64)


def _ranked(
    source: str, totals: dict[int, float], anchors: dict[int, int] | None = None
) -> Candidates:
    if not totals:
        return Candidates(source, EMPTY, np.zeros(0))
    idx = np.fromiter(totals, dtype=np.int64, count=len(totals))
    scores = np.fromiter(totals.values(), dtype=np.float64, count=len(totals))
    order = np.lexsort((idx, -scores))
    anchor_array = (
        np.array([anchors[int(i)] for i in idx[order]], dtype=np.int64) if anchors else None
    )
    return Candidates(source, idx[order], scores[order], anchor_array)


def neighbours(view: ShopView, kind: str, anchors: Sequence[tuple[int, float]]) -> Candidates:
    """Neighbours of weighted anchor products in one table, scores summed over anchors."""
    table = view.neighbours.get(kind)
    totals: dict[int, float] = {}
    best_anchor: dict[int, tuple[float, int]] = {}
    if table is not None:
        for anchor, weight in anchors:
            found = table.of(anchor)
            if found is None:
                continue
            for i, score in zip(found[0].tolist(), found[1].tolist(), strict=True):
                contribution = weight * score
                totals[i] = totals.get(i, 0.0) + contribution
                if contribution > best_anchor.get(i, (0.0, -1))[0]:
                    best_anchor[i] = (contribution, anchor)
    return _ranked(kind, totals, {i: a for i, (_, a) in best_anchor.items()})


def blend(source: str, parts: Sequence[tuple[Candidates, float]]) -> Candidates:
    """Weighted sum of several sources' scores, each scaled to its best score first. A product
    keeps the anchor and source of its largest contribution (reported in its reasons)."""
    totals: dict[int, float] = {}
    best: dict[int, tuple[float, str, int]] = {}
    for cands, weight in parts:
        if not len(cands.idx) or weight <= 0:
            continue
        top = float(cands.scores[0])
        for n, (i, s) in enumerate(zip(cands.idx.tolist(), cands.scores.tolist(), strict=True)):
            contribution = weight * s / top
            totals[i] = totals.get(i, 0.0) + contribution
            if contribution > best.get(i, (0.0, "", -1))[0]:
                anchor = int(cands.anchors[n]) if cands.anchors is not None else -1
                best[i] = (contribution, cands.source, anchor)
    ranked = _ranked(source, totals, {i: b[2] for i, b in best.items()})
    sources = [best[int(i)][1] for i in ranked.idx]
    return Candidates(source, ranked.idx, ranked.scores, ranked.anchors, sources)


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
