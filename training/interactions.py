"""The data every model fits on: a weighted user x item matrix with its vocabularies.

Rows are whatever a model learns from: shoppers (a client id, or "customer:<id>" once a
customer is known) for collaborative filtering, orders for co-purchase. Columns are product
ids. Weights already carry the event-type weights and the time decay (training/data.py);
models see only numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Interactions:
    matrix: sparse.csr_matrix  # float32, users x items, duplicates summed
    users: np.ndarray  # str, row labels
    items: np.ndarray  # str, column labels (product ids)

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.users), len(self.items)):
            raise ValueError(
                f"matrix {self.matrix.shape} does not match {len(self.users)} users "
                f"x {len(self.items)} items"
            )

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    @classmethod
    def from_triples(
        cls,
        users: Sequence[str] | np.ndarray,
        items: Sequence[str] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        item_vocabulary: Sequence[str] | np.ndarray | None = None,
    ) -> Interactions:
        """Build from parallel arrays; repeated (user, item) pairs add up. Vocabularies are
        sorted so the same data always gives the same matrix. `item_vocabulary` fixes the
        columns (items outside it are dropped), e.g. to score against a catalog."""
        user_labels, rows = np.unique(np.asarray(users, dtype=str), return_inverse=True)
        item_array = np.asarray(items, dtype=str)
        if item_vocabulary is None:
            item_labels, cols = np.unique(item_array, return_inverse=True)
            keep = np.ones(len(cols), dtype=bool)
        else:
            item_labels = np.unique(np.asarray(item_vocabulary, dtype=str))
            cols = np.searchsorted(item_labels, item_array)
            cols = np.minimum(cols, max(len(item_labels) - 1, 0))
            keep = item_labels[cols] == item_array if len(item_labels) else np.zeros(0, dtype=bool)
        values = (
            np.ones(len(rows), dtype=np.float32)
            if weights is None
            else np.asarray(weights, dtype=np.float32)
        )
        matrix = sparse.csr_matrix(
            (values[keep], (rows[keep], cols[keep])),
            shape=(len(user_labels), len(item_labels)),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        return cls(matrix, user_labels, item_labels)

    def binary(self) -> sparse.csr_matrix:
        """1 where a user interacted with an item at all."""
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        return out

    def binarised(self) -> Interactions:
        return Interactions(self.binary(), self.users, self.items)

    def rows(self, selected: np.ndarray) -> Interactions:
        """A subset of users (a shard), same item vocabulary."""
        return Interactions(self.matrix[selected], self.users[selected], self.items)
