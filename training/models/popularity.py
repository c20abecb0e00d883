"""Most popular items: the same ranking for every history.

It is the floor: a personalised model that cannot beat it on a shop's data should not serve
that shop. Popularity is the total interaction weight, so the event weights and time decay
of training/data.py make it "recently and strongly wanted", not "ever viewed".
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import numpy as np
from scipy import sparse

from deployments.ranking.cooccurrence import NeighbourTable
from training.interactions import Interactions
from training.models.base import ModelConfig, check_trainable, load_parts, save_parts


class PopularityConfig(ModelConfig):
    pass


class Popularity:
    kind: ClassVar[str] = "popularity"
    config_type: ClassVar[type[ModelConfig]] = PopularityConfig

    def __init__(self, config: PopularityConfig | None = None) -> None:
        self.config = config or PopularityConfig()
        self.items = np.zeros(0, dtype=str)
        self.totals = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> None:
        check_trainable(data.matrix)
        # Negative weights (a refund, say) lower an item but never make it "anti-popular".
        totals = np.asarray(data.matrix.sum(axis=0), dtype=np.float64).ravel()
        self.totals = np.maximum(totals, 0.0).astype(np.float32)
        self.items = np.asarray(data.items, dtype=str)

    def score(self, history: sparse.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.totals, (history.shape[0], len(self.totals))).copy()

    def neighbours(self, top_k: int) -> NeighbourTable:
        # Every item's neighbours are the bestsellers other than itself, so only the top_k + 1
        # best items are ever needed.
        n = len(self.items)
        best = np.argsort(-self.totals, kind="stable")[: top_k + 1]
        best = best[self.totals[best] > 0]
        rows = np.repeat(np.arange(n), len(best))
        cols = np.tile(best, n)
        scores = sparse.csr_matrix(
            (self.totals[cols].astype(np.float64), (rows, cols)), shape=(n, n)
        )
        return NeighbourTable.from_scores(self.kind, self.items, scores, top_k)

    def save(self, directory: Path) -> None:
        save_parts(directory, self.config, items=self.items, totals=self.totals)

    @classmethod
    def load(cls, directory: Path) -> Self:
        config, arrays = load_parts(directory, PopularityConfig)
        model = cls(config)
        model.items, model.totals = arrays["items"], arrays["totals"]
        return model
