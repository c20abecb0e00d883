"""The one contract every model keeps: a typed config, fit, score / recommend, neighbours for
serving, save / load. tests/unit/test_model_contract.py runs the same suite on all of them.

Models learn from an Interactions matrix (users x items) and score a *history*: a sparse row
of item weights over the items they were fitted on. Scoring from a history rather than from a
learnt user row means a model answers for a shopper it never saw (a new session) exactly as
it answers in offline evaluation.

Serving reads item-to-item neighbour tables (deployments/ranking/cooccurrence.NeighbourTable):
`neighbours(top_k)` exports what the ranking replicas load.

Gram models (item-kNN, EASE, co-purchase) fit from sums over rows: `statistics(shard)` of
disjoint user shards add up (`Gram.merge`) to the statistics of the whole matrix, which is
how Ray Train workers split a big shop's fit (training/distributed.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict
from scipy import sparse

from deployments.ranking.cooccurrence import NeighbourTable
from training import threads, topk
from training.interactions import Interactions

CONFIG_FILE = "config.json"
ARRAYS_FILE = "arrays.npz"


class ModelFitError(Exception):
    """A model cannot be fitted on this data (too little of it, or a numerical failure)."""


class ModelConfig(BaseModel):
    """Hyperparameters; unknown keys are an error so a typo in a TOML file is not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


C = TypeVar("C", bound=ModelConfig)


class Model(Protocol):
    kind: ClassVar[str]
    config_type: ClassVar[type[ModelConfig]]
    config: Any  # an instance of config_type
    items: np.ndarray  # str, the item vocabulary after fit

    def fit(self, data: Interactions) -> None:
        """Raises ModelFitError when the data cannot support the model."""

    def score(self, history: sparse.csr_matrix) -> np.ndarray:
        """Dense float32 (n_histories x n_items), higher is better. Items already in the
        history are not masked here (recommend() masks them)."""

    def neighbours(self, top_k: int) -> NeighbourTable:
        """Each item's best `top_k` other items with positive scores, best first."""

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


@dataclass
class Gram:
    """Sums over rows of a user x item matrix X: XᵀX, column sums, column counts, rows."""

    cooccurrence: sparse.csr_matrix  # float64 items x items, XᵀX
    totals: np.ndarray  # float64 per item, Σ_u x_ui
    counts: np.ndarray  # int64 per item, rows with x_ui > 0
    rows: int

    @classmethod
    def of(cls, matrix: sparse.csr_matrix) -> Gram:
        x = matrix.astype(np.float64)
        return cls(
            cooccurrence=(x.T @ x).tocsr(),
            totals=np.asarray(x.sum(axis=0)).ravel(),
            # Counted from values, not stored entries: a CSR row may hold explicit zeros.
            counts=np.asarray((x > 0).sum(axis=0)).ravel().astype(np.int64),
            rows=int(x.shape[0]),
        )

    def merge(self, other: Gram) -> Gram:
        return Gram(
            (self.cooccurrence + other.cooccurrence).tocsr(),
            self.totals + other.totals,
            self.counts + other.counts,
            self.rows + other.rows,
        )

    def write(self, fs: pafs.FileSystem, prefix: str) -> None:
        """One Arrow tensor file per array, `prefix.<name>.arrow` on `fs` (a local directory or
        a bucket): written and read back without the copies a zip (npz) archive costs, which
        matters at ~0.8 GB per shard for a 10M-interaction shop."""
        c = self.cooccurrence.tocsr()
        arrays = {
            "data": c.data,
            "indices": c.indices,
            "indptr": c.indptr,
            "sizes": np.array([*c.shape, self.rows], dtype=np.int64),
            "totals": self.totals,
            "counts": self.counts,
        }
        for name, array in arrays.items():
            with fs.open_output_stream(f"{prefix}.{name}.arrow") as out:
                pa.ipc.write_tensor(pa.Tensor.from_numpy(np.ascontiguousarray(array)), out)

    @classmethod
    def read(cls, fs: pafs.FileSystem, prefix: str) -> Gram:
        def array(name: str) -> np.ndarray:
            with fs.open_input_file(f"{prefix}.{name}.arrow") as source:
                return np.asarray(pa.ipc.read_tensor(source).to_numpy())

        n_rows, n_cols, rows = (int(v) for v in array("sizes"))
        matrix = sparse.csr_matrix(
            (array("data"), array("indices"), array("indptr")), shape=(n_rows, n_cols)
        )
        return cls(matrix, array("totals"), array("counts"), rows)


@runtime_checkable
class GramModel(Model, Protocol):
    def statistics(self, shard: sparse.csr_matrix) -> Gram:
        """What this model needs from one shard of rows (already weighted per row)."""

    def fit_statistics(self, gram: Gram, items: np.ndarray) -> None:
        """Finish the fit from merged statistics; fit(data) is this over statistics(data)."""


def recommend(
    model: Model, history: sparse.csr_matrix, k: int, *, exclude_seen: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores per history row, best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    scores = model.score(history).astype(np.float32, copy=True)
    if exclude_seen:
        rows, cols = history.nonzero()
        scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    top = topk.largest(scores, k)
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(top, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


def save_parts(directory: Path, config: ModelConfig, **arrays: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2))
    # The cast: numpy's stub types **kwds as if it could carry allow_pickle.
    np.savez(directory / ARRAYS_FILE, allow_pickle=False, **cast(dict[str, Any], arrays))


def load_parts(directory: Path, config_type: type[C]) -> tuple[C, dict[str, np.ndarray]]:
    config = config_type.model_validate_json((directory / CONFIG_FILE).read_text())
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as z:
        return config, {name: z[name] for name in z.files}


def check_trainable(matrix: sparse.csr_matrix) -> None:
    """The least any model needs: some positive interaction, and at least two items to
    choose between."""
    if matrix.shape[1] < 2:
        raise ModelFitError(f"need at least 2 items to recommend from, got {matrix.shape[1]}")
    if matrix.nnz == 0 or not np.any(matrix.data > 0):
        raise ModelFitError("no interactions to learn from")


def check_cooccurrence(gram: Gram) -> None:
    """Item-to-item models learn from pairs: they need some row with two items in it."""
    if gram.rows == 0 or gram.cooccurrence.shape[0] < 2:
        raise ModelFitError("no interactions to learn item-to-item relations from")
    # Counted rather than located: index arrays over every entry would cost GiBs at scale.
    g = sparse.csr_matrix(gram.cooccurrence)
    g.sum_duplicates()
    if np.count_nonzero(g.data > 0) <= np.count_nonzero(g.diagonal() > 0):
        raise ModelFitError(
            "no two items share a row: nothing to learn item-to-item relations from"
        )


# Rows of a dense item x item matrix handled at once: bounds the temporaries to ~64 MB for
# catalogs of tens of thousands of items.
_DENSE_CHUNK_ELEMENTS = 1 << 23


def top_k_rows(block: np.ndarray, top_k: int, first_row: int = 0) -> sparse.csr_matrix:
    """The top_k positive off-diagonal entries of each row of a dense block of an item x item
    matrix whose first row is item `first_row`, as sparse rows (ties: lower column first).
    The block is only read: the top_k + 1 entries of each row hold its top_k off the
    diagonal, and those are filtered, which spares copying and masking the whole block."""
    m, n = block.shape
    k = min(top_k + 1, n)
    if top_k <= 0 or m == 0 or n == 0:
        return sparse.csr_matrix((m, n), dtype=np.float64)
    columns = topk.largest(block, k)  # NaN ranks last and is never positive
    values = np.take_along_axis(block, columns, axis=1).astype(np.float64)
    order = np.lexsort((columns, -values), axis=1)
    columns = np.take_along_axis(columns, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    keep = (columns != (first_row + np.arange(m))[:, None]) & (values > 0)
    keep &= np.cumsum(keep, axis=1) <= top_k
    rows = np.broadcast_to(np.arange(m)[:, None], columns.shape)
    return sparse.csr_matrix((values[keep], (rows[keep], columns[keep])), shape=(m, n))


def top_k_table(
    kind: str, items: np.ndarray, similarity: sparse.csr_matrix | np.ndarray, top_k: int
) -> NeighbourTable:
    """A NeighbourTable from an item x item score matrix (row i: how much i suggests j);
    keeps each row's top_k positive off-diagonal entries. Support is not known to a learnt
    model and is reported as 0."""
    if sparse.issparse(similarity):
        matrix = _sparse_top_k(sparse.csr_matrix(similarity), top_k)
    else:
        dense = np.asarray(similarity)
        step = max(1, _DENSE_CHUNK_ELEMENTS // max(dense.shape[1], 1))
        blocks = threads.map_blocks(
            lambda lo: top_k_rows(dense[lo : lo + step], top_k, lo), range(0, dense.shape[0], step)
        )
        matrix = (
            sparse.vstack(blocks, format="csr")
            if blocks
            else sparse.csr_matrix(dense.shape, dtype=np.float64)
        )
    return NeighbourTable.from_scores(kind, items, matrix, top_k)


# A block of rows at least this dense is cheaper to pick from as dense rows (~4 ns an entry,
# filled or not) than by sorting its entries (~400 ns an entry, from_scores's lexsort).
_DENSE_PICK_DENSITY = 1 / 64
# Rows per dense block: 16 MB of float64, under glibc's mmap threshold, so the blocks reuse
# memory instead of page-faulting fresh pages in.
_PICK_CHUNK_ELEMENTS = 1 << 21


def _sparse_top_k(matrix: sparse.csr_matrix, top_k: int) -> sparse.csr_matrix:
    """The entries from_scores may pick: dense enough blocks of rows cut to their top_k
    positive off-diagonal entries (as from_scores would cut them: ties to the lower column),
    the sparse blocks left whole. Item-kNN's similarities of a big shop (10^8 entries) are
    mostly of the first kind."""
    n_rows, n = matrix.shape
    step = max(1, _PICK_CHUNK_ELEMENTS // max(n, 1))

    def pick(lo: int) -> sparse.csr_matrix:
        block = matrix[lo : lo + step]
        if (
            block.nnz > top_k * block.shape[0]
            and block.nnz >= _DENSE_PICK_DENSITY * block.shape[0] * n
        ):
            return top_k_rows(block.toarray(), top_k, lo)
        return block

    blocks = threads.map_blocks(pick, range(0, n_rows, step))
    return sparse.vstack(blocks, format="csr") if blocks else matrix
