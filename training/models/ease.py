"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

An item x item weight matrix B with a zero diagonal that best reconstructs each row from the
row's other items, under an L2 penalty λ. Its closed form, with P = (XᵀX + λI)⁻¹:

    B = I - P · diag(1 / diag(P)),   i.e. B_ij = -P_ij / P_jj off the diagonal.

score(history) = history · B; row i of B is how much item i suggests each other item.

It needs only G = XᵀX, so shards fit it like the other Gram models, but the inverse is dense
and cubic: past `max_items` (n² float64 is 1.8 GB at 15 000 items) the fit is refused rather
than left to run a worker out of memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import numpy as np
from pydantic import Field
from scipy import sparse
from scipy.linalg import lapack

from deployments.ranking.cooccurrence import NeighbourTable
from training.interactions import Interactions
from training.models.base import (
    Gram,
    ModelConfig,
    ModelFitError,
    check_cooccurrence,
    check_trainable,
    load_parts,
    save_parts,
    top_k_table,
)


class EASEConfig(ModelConfig):
    l2: float = Field(200.0, ge=0)
    max_items: int = Field(15_000, ge=2)


class EASE:
    kind: ClassVar[str] = "ease"
    config_type: ClassVar[type[ModelConfig]] = EASEConfig

    def __init__(self, config: EASEConfig | None = None) -> None:
        self.config = config or EASEConfig()
        self.items = np.zeros(0, dtype=str)
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def statistics(self, shard: sparse.csr_matrix) -> Gram:
        return Gram.of(shard)

    def fit(self, data: Interactions) -> None:
        check_trainable(data.matrix)
        self._check_size(data.n_items)
        self.fit_statistics(self.statistics(data.matrix), data.items)

    def fit_statistics(self, gram: Gram, items: np.ndarray) -> None:
        n = gram.cooccurrence.shape[0]
        self._check_size(n)
        check_cooccurrence(gram)
        # G is symmetric, so its transpose (a Fortran-ordered view) is the same matrix and
        # LAPACK can work in place: at 15 000 items every n² copy is another 1.8 GB.
        g = np.asarray(gram.cooccurrence.toarray(), dtype=np.float64).T
        g[np.diag_indices(n)] += self.config.l2
        norm = max(
            float(np.abs(g[:, lo : lo + 1024]).sum(axis=0).max()) for lo in range(0, n, 1024)
        )
        # Cholesky rather than a general inverse: G + λI is symmetric positive (semi)definite.
        # Rounding can let a singular G (λ = 0, two items always bought together) factorise
        # with a tiny pivot, so the condition number, not LAPACK's info, is the test.
        factor, info = lapack.dpotrf(g, lower=0, clean=1, overwrite_a=1)
        rcond = lapack.dpocon(factor, norm)[0] if info == 0 else 0.0
        if rcond < n * np.finfo(np.float64).eps:
            raise ModelFitError(
                f"XᵀX + {self.config.l2}·I is singular or nearly so "
                f"(reciprocal condition {rcond:.1e}); raise l2"
            )
        precision, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
        if info != 0:
            raise ModelFitError(f"inverting XᵀX + λI failed (LAPACK info {info})")
        _mirror_upper(precision)
        diagonal = np.diag(precision).copy()
        precision /= -diagonal[np.newaxis, :]
        np.fill_diagonal(precision, 0.0)
        if not np.all(np.isfinite(precision)):
            raise ModelFitError("EASE weights are not finite; raise l2")
        self.weights = np.ascontiguousarray(precision, dtype=np.float32)
        self.items = np.asarray(items, dtype=str)

    def _check_size(self, n_items: int) -> None:
        if n_items > self.config.max_items:
            raise ModelFitError(
                f"EASE inverts a dense {n_items} x {n_items} matrix; this shop has more than "
                f"max_items={self.config.max_items} items"
            )

    def score(self, history: sparse.csr_matrix) -> np.ndarray:
        h = sparse.csr_matrix(history, dtype=np.float32)
        return np.asarray(h @ self.weights, dtype=np.float32)

    def neighbours(self, top_k: int) -> NeighbourTable:
        return top_k_table(self.kind, self.items, self.weights, top_k)

    def save(self, directory: Path) -> None:
        save_parts(directory, self.config, items=self.items, weights=self.weights)

    @classmethod
    def load(cls, directory: Path) -> Self:
        config, arrays = load_parts(directory, EASEConfig)
        model = cls(config)
        model.items, model.weights = arrays["items"], arrays["weights"]
        return model


def _mirror_upper(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one in place, a band of rows at a time so no
    n² temporary is made."""
    for lo in range(block, matrix.shape[0], block):
        hi = min(lo + block, matrix.shape[0])
        matrix[lo:hi, :lo] = matrix[:lo, lo:hi].T
    for lo in range(0, matrix.shape[0], block):
        hi = min(lo + block, matrix.shape[0])
        square = matrix[lo:hi, lo:hi]
        square[...] = np.triu(square) + np.triu(square, 1).T
