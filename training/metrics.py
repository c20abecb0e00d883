"""Top-k ranking metrics, per user, with RecBole's definitions.

Every function takes `hits`, a (users x K) boolean array whose column r says whether the item
ranked at position r + 1 is relevant, and `n_relevant`, each user's number of relevant items
(all of them, not only those in the top K). They return one value per user; averaging is the
caller's business, so the per-user arrays stay available for paired tests.
"""

from __future__ import annotations

import numpy as np

METRICS = ("ndcg", "recall", "mrr", "hit", "precision")


def _floats(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _top(hits: np.ndarray, k: int) -> np.ndarray:
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k={k} outside 1..{hits.shape[1]}")
    return hits[:, :k]


def hit_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return _floats(_top(hits, k).any(axis=1))


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return _floats(_top(hits, k).sum(axis=1) / k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Relevant items in the top k over all of the user's relevant items (RecBole's recall)."""
    found = _top(hits, k).sum(axis=1)
    return _floats(np.divide(found, n_relevant, out=np.zeros(len(found)), where=n_relevant > 0))


def mrr_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first relevant item in the top k, 0 when there is none."""
    top = _top(hits, k)
    first = top.argmax(axis=1)
    return _floats(np.where(top.any(axis=1), 1.0 / (first + 1), 0.0))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance DCG@k over the ideal DCG of min(n_relevant, k) relevant items."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = _top(hits, k) @ discounts
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[np.minimum(n_relevant, k)]
    return _floats(np.divide(dcg, ideal, out=np.zeros(len(dcg)), where=ideal > 0))


FUNCTIONS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "hit": hit_at_k,
    "precision": precision_at_k,
}


def all_at(hits: np.ndarray, n_relevant: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every metric at every k, keyed like "ndcg@10"."""
    return {f"{name}@{k}": FUNCTIONS[name](hits, n_relevant, k) for name in METRICS for k in ks}
