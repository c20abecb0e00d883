"""Item-to-item neighbour tables from baskets: products viewed, carted or bought together.

Counting: a basket is a set of products (a visitor's day of views or carts, or one order);
n_i is the number of baskets with product i, n_ij those with both i and j, N all baskets.
Two measures, chosen so a bestseller is not everyone's neighbour:

- cosine  n_ij / sqrt(n_i n_j)  — "viewed together", for related products;
- NPMI    log(p_ij / (p_i p_j)) / -log p_ij  — normalised pointwise mutual information, in
  [-1, 1], positive only when two products co-occur more often than their popularity alone
  predicts; for complementary and frequently-bought-together.

Pairs seen in fewer than `min_support` baskets are dropped: one shopper's odd basket is not
evidence. Baskets larger than MAX_BASKET keep their first items (bots and crawlers view
everything, and a basket's cost is quadratic in its size).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

MAX_BASKET = 50


@dataclass(frozen=True)
class NeighbourTable:
    kind: str
    product_ids: np.ndarray  # str, the products that have neighbours (and their neighbours)
    indptr: np.ndarray  # int64, CSR row pointers over product_ids
    neighbours: np.ndarray  # int32, indices into product_ids, best first within a row
    scores: np.ndarray  # float32
    support: np.ndarray  # int32, baskets containing both
    baskets: int  # N

    def of(self, product_id: str) -> list[tuple[str, float, int]]:
        row = self._row(product_id)
        if row is None:
            return []
        lo, hi = self.indptr[row], self.indptr[row + 1]
        return [
            (str(self.product_ids[j]), float(s), int(n))
            for j, s, n in zip(
                self.neighbours[lo:hi], self.scores[lo:hi], self.support[lo:hi], strict=True
            )
        ]

    def _row(self, product_id: str) -> int | None:
        index = getattr(self, "_index", None)
        if index is None:
            index = {str(p): i for i, p in enumerate(self.product_ids)}
            object.__setattr__(self, "_index", index)
        return index.get(product_id)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            kind=np.array(self.kind),
            product_ids=self.product_ids.astype(str),
            indptr=self.indptr,
            neighbours=self.neighbours,
            scores=self.scores,
            support=self.support,
            baskets=np.array(self.baskets),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> NeighbourTable:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return cls(
                kind=str(z["kind"]),
                product_ids=z["product_ids"],
                indptr=z["indptr"],
                neighbours=z["neighbours"],
                scores=z["scores"],
                support=z["support"],
                baskets=int(z["baskets"]),
            )


def compute(
    kind: str,
    pairs: Iterable[tuple[str, str]],
    *,
    measure: str,
    min_support: int = 2,
    top_k: int = 50,
) -> NeighbourTable:
    """Neighbour table from (basket, product) pairs; duplicates within a basket count once."""
    if measure not in ("cosine", "npmi"):
        raise ValueError(f"unknown measure {measure!r}")
    basket_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    members: dict[int, set[int]] = {}
    for basket, product in pairs:
        b = basket_index.setdefault(basket, len(basket_index))
        items = members.setdefault(b, set())
        if len(items) < MAX_BASKET:
            items.add(item_index.setdefault(product, len(item_index)))
    products = np.array(list(item_index), dtype=str)
    n_baskets, n_items = len(basket_index), len(item_index)
    rows = np.fromiter((b for b, items in members.items() for _ in items), dtype=np.int64)
    cols = np.fromiter((i for items in members.values() for i in items), dtype=np.int64)
    basket_matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(n_baskets, n_items)
    )
    counts = np.asarray(basket_matrix.sum(axis=0)).ravel().astype(np.float64)
    together = (basket_matrix.T @ basket_matrix).tocsr()
    together.setdiag(0)
    together.eliminate_zeros()

    indptr = [0]
    out_neighbours: list[np.ndarray] = []
    out_scores: list[np.ndarray] = []
    out_support: list[np.ndarray] = []
    for i in range(n_items):
        lo, hi = together.indptr[i], together.indptr[i + 1]
        js, nij = together.indices[lo:hi], together.data[lo:hi].astype(np.float64)
        keep = nij >= min_support
        js, nij = js[keep], nij[keep]
        if measure == "cosine":
            score = nij / np.sqrt(counts[i] * counts[js])
        else:
            p_ij = nij / n_baskets
            pmi = np.log(p_ij / ((counts[i] / n_baskets) * (counts[js] / n_baskets)))
            # p_ij == 1 (every basket has both) makes -log p_ij zero: perfectly associated.
            denominator = -np.log(p_ij)
            score = np.where(denominator > 0, pmi / np.where(denominator > 0, denominator, 1), 1.0)
            positive = score > 0
            js, nij, score = js[positive], nij[positive], score[positive]
        order = np.lexsort((-nij, -score))[:top_k]  # best score first, then more support
        out_neighbours.append(js[order].astype(np.int32))
        out_scores.append(score[order].astype(np.float32))
        out_support.append(nij[order].astype(np.int32))
        indptr.append(indptr[-1] + len(order))
    return NeighbourTable(
        kind=kind,
        product_ids=products,
        indptr=np.array(indptr, dtype=np.int64),
        neighbours=_concat(out_neighbours, np.int32),
        scores=_concat(out_scores, np.float32),
        support=_concat(out_support, np.int32),
        baskets=n_baskets,
    )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
