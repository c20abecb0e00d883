"""Offline ranking evaluation shared by the training jobs (model selection on a shop's
validation split) and bench/quality (MovieLens-100K): full ranking over all items, the
user's known items excluded, metrics per user (training/metrics.py) so paired tests can use
them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from training import metrics, threads, topk

KS = (10, 20)
# Query rows -> dense scores (rows x items). The evaluation sets the known items' scores to
# -inf in place, so a scorer returns a new array, not one it keeps.
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    """Per-query metric values for the queries that had something to find."""

    queries: np.ndarray
    per_query: dict[str, np.ndarray]

    def mean(self, metric: str) -> float:
        return float(self.per_query[metric].mean()) if len(self.queries) else float("nan")

    def means(self) -> dict[str, float]:
        return {name: self.mean(name) for name in self.per_query}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first (ties: lower index)."""
    part = topk.largest(scores, k)
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _writable_floats(scores: np.ndarray) -> np.ndarray:
    """The scorer's array itself where it is a float array of its own (no copy of a block
    of a catalog's width per batch), else a float copy."""
    scores = np.asarray(scores)
    if scores.dtype.kind != "f":
        return scores.astype(np.float64)
    if scores.base is not None or not scores.flags.writeable:
        return scores.copy()
    return scores


def evaluate(
    scorer: Scorer,
    known: sparse.csr_matrix,
    relevant: sparse.csr_matrix,
    ks: tuple[int, ...] = KS,
    batch_size: int = 1024,
    *,
    n_relevant: np.ndarray | None = None,
) -> Evaluation:
    """Rank every item for each query with a relevant item, known items excluded.
    `n_relevant` overrides the count of relevant items per query, for relevant items outside
    the scored vocabulary (a product first seen in validation still counts as missed)."""
    known, relevant = known.tocsr(), relevant.tocsr()
    n_items = relevant.shape[1]
    # A catalog smaller than k: every item is ranked, the positions beyond it are empty.
    depth = min(max(ks), n_items)
    if depth < 1:
        raise ValueError("nothing to rank: no items")
    counts = np.diff(relevant.indptr) if n_relevant is None else np.asarray(n_relevant)
    queries = np.flatnonzero(counts > 0)

    def evaluate_batch(batch: np.ndarray) -> dict[str, np.ndarray]:
        scores = _writable_floats(scorer(batch))
        if scores.shape != (len(batch), n_items):
            raise ValueError(f"scores {scores.shape}, expected {(len(batch), n_items)}")
        if np.isnan(scores.max()):  # max is NaN if any score is; one pass, no temporary
            raise ValueError("a model returned NaN scores")
        seen = known[batch]
        scores[np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices] = -np.inf
        ranked = top_k(scores, depth)
        rows = np.repeat(np.arange(len(batch)), depth)
        hits = (np.asarray(relevant[batch][rows, ranked.ravel()]) > 0).reshape(ranked.shape)
        hits = np.pad(hits, ((0, 0), (0, max(ks) - depth)))
        return metrics.all_at(hits, counts[batch], ks)

    # Batches are independent: they run on every core (training/threads.py).
    batches = threads.map_blocks(
        evaluate_batch,
        (queries[start : start + batch_size] for start in range(0, len(queries), batch_size)),
    )
    names = [f"{m}@{k}" for m in metrics.METRICS for k in ks]
    per_query = {
        name: np.concatenate([b[name] for b in batches]) if batches else np.zeros(0)
        for name in names
    }
    return Evaluation(queries=queries, per_query=per_query)


def ranked_lists(
    query: np.ndarray, item: np.ndarray, score: np.ndarray, n_queries: int, depth: int
) -> np.ndarray:
    """Candidate rows (query, item, score) to a queries x depth matrix of items, best first,
    -1 padding: for metrics over a re-ranked candidate list."""
    out = np.full((n_queries, depth), -1, dtype=np.int64)
    order = np.lexsort((item, -score, query))
    q_sorted = query[order]
    starts = np.r_[0, np.flatnonzero(np.diff(q_sorted)) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = rank < depth
    out[q_sorted[keep], rank[keep]] = item[order][keep]
    return out


def evaluate_lists(
    lists: np.ndarray,
    relevant: sparse.csr_matrix,
    ks: tuple[int, ...] = KS,
    *,
    n_relevant: np.ndarray | None = None,
) -> Evaluation:
    """Metrics of fixed ranked lists (queries x depth item indices, -1 padding)."""
    relevant = relevant.tocsr()
    counts = np.diff(relevant.indptr) if n_relevant is None else np.asarray(n_relevant)
    queries = np.flatnonzero(counts > 0)
    sub = lists[queries]
    wanted = relevant[queries]
    rows = np.repeat(np.arange(len(queries)), sub.shape[1])
    cols = np.maximum(sub.ravel(), 0)
    hits = (np.asarray(wanted[rows, cols]).ravel() > 0) & (sub.ravel() >= 0)
    per_query = metrics.all_at(hits.reshape(sub.shape), counts[queries], ks)
    return Evaluation(queries=queries, per_query=per_query)
