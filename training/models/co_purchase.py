"""Frequently bought together: item associations from orders.

Rows are orders (baskets), taken as sets: a second unit of the same product is not evidence
that two products go together. The association of a pair is measured against what the two
products' own popularity predicts (NPMI by default, or lift, or cosine), with the serving
refresher's formulas (deployments/ranking/cooccurrence.associations), so an offline-trained
table and a live-refreshed one mean the same thing. Pairs bought together in fewer than
`min_support` orders are dropped: one odd order is not evidence.

score(history) = Σ_{i in history} A[i]: each item in the history votes for its positively
associated items; A keeps each item's `neighbours` strongest pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

import numpy as np
from pydantic import Field
from scipy import sparse

from deployments.ranking.cooccurrence import NeighbourTable, associations
from training.interactions import Interactions
from training.models.base import (
    Gram,
    ModelConfig,
    ModelFitError,
    check_cooccurrence,
    check_trainable,
    load_parts,
    save_parts,
)


class CoPurchaseConfig(ModelConfig):
    measure: Literal["npmi", "lift", "cosine"] = "npmi"
    min_support: int = Field(2, ge=1)
    neighbours: int = Field(100, ge=1)
    # Larger orders are left out: a wholesale or staff order links everything to everything.
    max_basket: int = Field(50, ge=2)


class CoPurchase:
    kind: ClassVar[str] = "co_purchase"
    config_type: ClassVar[type[ModelConfig]] = CoPurchaseConfig

    def __init__(self, config: CoPurchaseConfig | None = None) -> None:
        self.config = config or CoPurchaseConfig()
        self.items = np.zeros(0, dtype=str)
        self.association = sparse.csr_matrix((0, 0), dtype=np.float32)
        self.support = sparse.csr_matrix((0, 0), dtype=np.int32)
        self.baskets = 0

    def statistics(self, shard: sparse.csr_matrix) -> Gram:
        baskets = sparse.csr_matrix(shard, dtype=np.float64, copy=True)
        baskets.data = (baskets.data > 0).astype(np.float64)
        baskets.eliminate_zeros()
        sizes = np.diff(baskets.indptr)
        return Gram.of(baskets[(sizes > 0) & (sizes <= self.config.max_basket)])

    def fit(self, data: Interactions) -> None:
        check_trainable(data.matrix)
        self.fit_statistics(self.statistics(data.matrix), data.items)

    def fit_statistics(self, gram: Gram, items: np.ndarray) -> None:
        check_cooccurrence(gram)
        scores, support = associations(
            gram.cooccurrence,
            gram.counts,
            gram.rows,
            measure=self.config.measure,
            min_support=self.config.min_support,
        )
        if scores.nnz == 0:
            raise ModelFitError(
                f"no two products were bought together in {self.config.min_support} or more "
                f"orders of at most {self.config.max_basket} products"
            )
        table = NeighbourTable.from_scores(
            self.kind, items, scores, self.config.neighbours, support=support
        )
        shape = gram.cooccurrence.shape
        self.association = sparse.csr_matrix(
            (table.scores, table.neighbours, table.indptr), shape=shape, dtype=np.float32
        )
        self.support = sparse.csr_matrix(
            (table.support, table.neighbours, table.indptr), shape=shape, dtype=np.int32
        )
        self.baskets = gram.rows
        self.items = np.asarray(items, dtype=str)

    def score(self, history: sparse.csr_matrix) -> np.ndarray:
        # Presence, not quantity: two units of a product in the cart are still one product.
        h = sparse.csr_matrix(history, dtype=np.float32, copy=True)
        h.data = (h.data > 0).astype(np.float32)
        return np.asarray((h @ self.association).toarray(), dtype=np.float32)

    def neighbours(self, top_k: int) -> NeighbourTable:
        return NeighbourTable.from_scores(
            self.kind,
            self.items,
            self.association,
            top_k,
            support=self.support,
            baskets=self.baskets,
        )

    def save(self, directory: Path) -> None:
        a = self.association
        save_parts(
            directory,
            self.config,
            items=self.items,
            data=a.data,
            support=self.support.data,
            indices=a.indices,
            indptr=a.indptr,
            baskets=np.array(self.baskets),
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        config, arrays = load_parts(directory, CoPurchaseConfig)
        model = cls(config)
        n = len(arrays["items"])
        structure = (arrays["indices"], arrays["indptr"])
        model.items = arrays["items"]
        model.association = sparse.csr_matrix((arrays["data"], *structure), shape=(n, n))
        model.support = sparse.csr_matrix((arrays["support"], *structure), shape=(n, n))
        model.baskets = int(arrays["baskets"])
        return model
