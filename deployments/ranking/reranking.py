"""Serving side of the learning-to-rank re-ranker: re-order a request's first candidates with
the shop's XGBoost model, on the features training computed (deployments/ranking/features.py).

Only the first step of an intent is re-ranked (its blended neighbour candidates), and only its
first `candidates` products: the model was fitted on exactly such lists. The re-ordered
products keep scores above everything after them, so the engine's tiers hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import sparse

from deployments.ranking import features
from deployments.ranking import strategies as s
from deployments.ranking.view import ShopView
from training.rerank import Reranker

RERANK_INTENTS = ("related", "personalized")


def rerank(
    view: ShopView,
    base: s.Candidates,
    model: Reranker,
    anchors: Sequence[tuple[int, float]],
    focus: int | None,
    device: str | None,
    now: float,
) -> s.Candidates:
    """`anchors`: the weighted products the candidates came from (the session); `focus`: the
    product the request is about (the product page, else the latest item)."""
    n = min(len(base.idx), model.config.candidates)
    if n < 2:
        return base
    top = base.idx[:n]
    per_source = {kind: s.neighbours(view, kind, anchors) for kind in model.sources}
    rows = features.Rows(
        query=np.zeros(n, dtype=np.int64),
        item=top,
        base=base.scores[:n],
        sources={kind: _scores_at(found, top) for kind, found in per_source.items()},
        anchor=np.array([focus if focus is not None else -1], dtype=np.int64),
        session=_session(view.size, anchors),
        device=np.array([features.DEVICES.get(device or "", np.nan)]),
    )
    x = features.matrix(features.ProductFrame.from_view(view), rows, now, model.sources)
    order = np.argsort(-model.score(x), kind="stable")
    head = 1.0 + (n - np.arange(n)) / n  # in (1, 2]: above every unranked candidate
    tail = base.scores[n:] / base.scores[0]  # in (0, 1]
    return replace(
        base,
        idx=np.concatenate([top[order], base.idx[n:]]),
        scores=np.concatenate([head, tail]),
        anchors=None
        if base.anchors is None
        else np.concatenate([base.anchors[:n][order], base.anchors[n:]]),
        sources=None
        if base.sources is None
        else [base.sources[i] for i in order] + base.sources[n:],
        model="reranker",
    )


def _scores_at(candidates: s.Candidates, items: np.ndarray) -> np.ndarray:
    """A source's score for each of `items` (0 where the source did not propose it)."""
    out = np.zeros(len(items))
    if not len(candidates.idx):
        return out
    order = np.argsort(candidates.idx)
    sorted_idx = candidates.idx[order]
    pos = np.minimum(np.searchsorted(sorted_idx, items), len(sorted_idx) - 1)
    found = sorted_idx[pos] == items
    out[found] = candidates.scores[order][pos[found]]
    return out


def _session(size: int, anchors: Sequence[tuple[int, float]]) -> sparse.csr_matrix:
    cols = [a for a, _ in anchors]
    weights = [w for _, w in anchors]
    return sparse.csr_matrix((weights, ([0] * len(cols), cols)), shape=(1, size))
