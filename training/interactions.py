"""The data every model fits on: a weighted user x item matrix with its vocabularies.

Rows are whatever a model learns from: shoppers (a client id, or "customer:<id>" once a
customer is known) for collaborative filtering, orders for co-purchase. Columns are product
ids. Weights already carry the event-type weights and the time decay (training/data.py);
models see only numbers.

`groups`, when given, is the catalog's structure over the same columns: one row per collection,
tag, vendor or product type, 1 for its products (training/catalog_groups.py). Models that can
learn from it (ALS's catalog_weight) do; the others ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

Labels: TypeAlias = Sequence[str] | np.ndarray | pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class Interactions:
    matrix: sparse.csr_matrix  # float32, users x items, duplicates summed
    users: np.ndarray  # str, row labels
    items: np.ndarray  # str, column labels (product ids)
    groups: sparse.csr_matrix | None = None  # float32, catalog groups x items

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.users), len(self.items)):
            raise ValueError(
                f"matrix {self.matrix.shape} does not match {len(self.users)} users "
                f"x {len(self.items)} items"
            )
        if self.groups is not None and self.groups.shape[1] != len(self.items):
            raise ValueError(f"groups {self.groups.shape} do not match the {len(self.items)} items")

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
        users: Labels,
        items: Labels,
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        item_vocabulary: Sequence[str] | np.ndarray | None = None,
    ) -> Interactions:
        """Build from parallel arrays; repeated (user, item) pairs add up. Vocabularies are
        sorted so the same data always gives the same matrix. `item_vocabulary` fixes the
        columns (items outside it are dropped), e.g. to score against a catalog."""
        user_labels, rows = _encode(users)
        item_found, item_codes = _encode(items)
        if item_vocabulary is None:
            item_labels, cols = item_found, item_codes
            keep = np.ones(len(cols), dtype=bool)
        else:
            item_labels = np.unique(np.asarray(item_vocabulary, dtype=str))
            # Only the distinct items are looked up in the vocabulary, not every row.
            at = np.minimum(np.searchsorted(item_labels, item_found), max(len(item_labels) - 1, 0))
            known = (
                item_labels[at] == item_found
                if len(item_labels)
                else np.zeros(len(item_found), dtype=bool)
            )
            cols, keep = at[item_codes], known[item_codes]
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
        return Interactions(self.binary(), self.users, self.items, self.groups)

    def rows(self, selected: np.ndarray) -> Interactions:
        """A subset of users (a shard), same item vocabulary and groups."""
        return Interactions(self.matrix[selected], self.users[selected], self.items, self.groups)


def _encode(values: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels and each value's index among them (np.unique's answer). Arrow's
    dictionary encoding does it: a numpy string array of 10^7 rows and its sort would cost
    several GiB (fixed-width UTF-32) where Arrow keeps the strings compact."""
    if isinstance(values, pa.ChunkedArray):
        array = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    elif isinstance(values, pa.Array):
        array = values
    else:
        array = pa.array(np.asarray(values, dtype=str), pa.string())
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    if array.null_count:
        raise ValueError("labels must not be null")
    encoded = pc.dictionary_encode(array)
    dictionary = encoded.dictionary
    # Byte order of UTF-8 is code point order: the same order np.unique gives.
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    labels = np.asarray(dictionary.take(order).to_numpy(zero_copy_only=False), dtype=str)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return labels, rank[codes] if len(codes) else np.zeros(0, dtype=np.int64)
