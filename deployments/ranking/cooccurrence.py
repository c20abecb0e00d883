"""Item-to-item neighbour tables from baskets: products viewed, carted or bought together.

Counting: a basket is a set of products (a visitor's day of views or carts, or one order);
n_i is the number of baskets with product i, n_ij those with both i and j, N all baskets.
Two measures, chosen so a bestseller is not everyone's neighbour:

- cosine  n_ij / sqrt(n_i n_j)  — "viewed together", for related products;
- NPMI    log(p_ij / (p_i p_j)) / -log p_ij  — normalised pointwise mutual information, in
  [-1, 1], positive only when two products co-occur more often than their popularity alone
  predicts; for complementary and frequently-bought-together;
- lift    p_ij / (p_i p_j) — the same comparison unnormalised, kept when above 1; easy to
  explain to a merchant, but favours rare pairs more than NPMI does.

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
# Stored entries of a score matrix ranked at once when building a table.
BLOCK_ENTRIES = 1 << 22


def row_blocks(indptr: np.ndarray, entries: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of a CSR matrix holding about `entries` stored values each (a
    row longer than that is a block of its own)."""
    n = len(indptr) - 1
    blocks, lo = [], 0
    while lo < n:
        hi = int(np.searchsorted(indptr, indptr[lo] + entries, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        blocks.append((lo, hi))
        lo = hi
    return blocks


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

    @classmethod
    def from_scores(
        cls,
        kind: str,
        product_ids: np.ndarray,
        scores: sparse.csr_matrix,
        top_k: int,
        *,
        support: sparse.csr_matrix | None = None,
        baskets: int = 0,
    ) -> NeighbourTable:
        """Each row's best `top_k` positive entries off the diagonal of an item x item score
        matrix (row i: how much i suggests j). Best first: higher score, then more support,
        then lower index, so the same matrix always gives the same table. `support`, when
        known, has the sparsity pattern of `scores`."""
        matrix = sparse.csr_matrix(scores)
        if support is not None:
            counted = sparse.csr_matrix(support)
            if counted.shape != matrix.shape:
                raise ValueError("support must have the sparsity pattern of scores")
        n = matrix.shape[0]
        # Rows are independent: a block at a time keeps the sort's temporaries (~100 bytes
        # per entry) bounded, which matters for item-kNN Grams of 10^8 entries.
        parts: list[tuple[np.ndarray, ...]] = []
        counts = np.zeros(n, dtype=np.int64)
        for lo, hi in row_blocks(matrix.indptr, BLOCK_ENTRIES):
            block = matrix[lo:hi]
            block.sum_duplicates()
            if support is None:
                evidence = np.zeros(len(block.data), dtype=np.float64)
            else:
                held = counted[lo:hi]
                held.sum_duplicates()
                if not (
                    np.array_equal(held.indptr, block.indptr)
                    and np.array_equal(held.indices, block.indices)
                ):
                    raise ValueError("support must have the sparsity pattern of scores")
                evidence = held.data.astype(np.float64)
            rows = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(block.indptr))
            cols = block.indices.astype(np.int64)
            values = block.data.astype(np.float64)
            keep = (values > 0) & (rows != cols)
            rows, cols, values, evidence = rows[keep], cols[keep], values[keep], evidence[keep]
            order = np.lexsort((cols, -evidence, -values, rows))
            rows, cols, values, evidence = rows[order], cols[order], values[order], evidence[order]
            rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
            best = rank < top_k
            rows, cols, values, evidence = rows[best], cols[best], values[best], evidence[best]
            counts += np.bincount(rows, minlength=n)
            parts.append(
                (
                    cols.astype(np.int32),
                    values.astype(np.float32),
                    np.rint(evidence).astype(np.int32),
                )
            )
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])

        def joined(i: int, dtype: type) -> np.ndarray:
            return np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype)

        return cls(
            kind=kind,
            product_ids=np.asarray(product_ids, dtype=str),
            indptr=indptr,
            neighbours=joined(0, np.int32),
            scores=joined(1, np.float32),
            support=joined(2, np.int32),
            baskets=baskets,
        )

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


MEASURES = ("cosine", "npmi", "lift")


def compute(
    kind: str,
    pairs: Iterable[tuple[str, str]],
    *,
    measure: str,
    min_support: int = 2,
    top_k: int = 50,
) -> NeighbourTable:
    """Neighbour table from (basket, product) pairs; duplicates within a basket count once."""
    if measure not in MEASURES:
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
    counts = np.asarray(basket_matrix.sum(axis=0)).ravel()
    together = (basket_matrix.T @ basket_matrix).tocsr()
    scores, support = associations(
        together, counts, n_baskets, measure=measure, min_support=min_support
    )
    return NeighbourTable.from_scores(
        kind, products, scores, top_k, support=support, baskets=n_baskets
    )


def associations(
    together: sparse.csr_matrix,
    counts: np.ndarray,
    baskets: int,
    *,
    measure: str,
    min_support: int,
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Association scores between items from basket counts, and their support.

    `together` holds n_ij (its diagonal is ignored), `counts` n_i, `baskets` N. Only pairs with
    n_ij >= min_support and a positive association are kept; the two results share one
    sparsity pattern, so support[i, j] is the evidence behind scores[i, j]. Shared by the
    serving refresher (compute) and the trained co-purchase model (training/models)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    pairs = sparse.coo_matrix(together)
    i, j = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    nij = np.rint(pairs.data).astype(np.float64)
    keep = (i != j) & (nij >= max(min_support, 1))
    i, j, nij = i[keep], j[keep], nij[keep]
    n = np.asarray(counts, dtype=np.float64)
    if measure == "cosine":
        score = nij / np.sqrt(n[i] * n[j])
    elif measure == "lift":
        # > 1 exactly when the pair co-occurs more often than independence predicts.
        score = nij * baskets / (n[i] * n[j])
    else:
        p_ij = nij / baskets
        pmi = np.log(p_ij / ((n[i] / baskets) * (n[j] / baskets)))
        # p_ij == 1 (every basket has both) makes -log p_ij zero: perfectly associated.
        denominator = -np.log(p_ij)
        score = np.where(denominator > 0, pmi / np.where(denominator > 0, denominator, 1), 1.0)
    positive = score > 1 if measure == "lift" else score > 0
    i, j, nij, score = i[positive], j[positive], nij[positive], score[positive]
    shape = together.shape
    scores = sparse.csr_matrix((score, (i, j)), shape=shape)
    support = sparse.csr_matrix((nij, (i, j)), shape=shape)
    scores.sort_indices()
    support.sort_indices()
    return scores, support
