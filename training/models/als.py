"""Implicit-feedback matrix factorisation by alternating least squares.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008):
every (user, item) cell is a preference p = [w > 0] with confidence c = 1 + alpha·w, and

    min Σ_{u,i} c_ui (p_ui - x_u·y_i)² + λ (Σ ‖x_u‖² + Σ ‖y_i‖²)

alternates exact least-squares problems for all users, then all items. With
`activity_exponent` e > 0, a user's weights w are first scaled by (n_u / n̄)^-e, n_u their
distinct items and n̄ the training users' mean: the confidence a very active user puts on each
item shrinks, as inverse-frequency row weighting does for item-kNN. For one row,
(YᵀY + Yᵀ(C_u - I)Y + λI) x_u = Yᵀ C_u p_u: YᵀY is shared and only the row's own interactions
add to it, which is what keeps the cost linear in the interactions.

Solving: a few conjugate-gradient steps per row warm-started from the previous iterate (Takács,
Pilászy & Tikk, RecSys 2011), run for a chunk of rows at once in matrix form, so the work is
sparse products and gathers over the interactions rather than a Python loop over users.
`cg_steps=0` instead solves every row exactly (batched dense solves), which fold-in always does.

With `catalog_weight` b > 0 and the data's catalog groups (collections, tags, vendors, types,
title words; training/catalog_groups.py), each group joins the fit as a pseudo-shopper who
interacted with all its products at weight b: products of a group are pulled toward a shared
direction, and a column nobody has interacted with gets factors from its groups instead of
zeros. It is collective matrix factorisation with the item-side matrix as extra rows (Singh &
Gordon, KDD 2008). A shop's fit has columns only for the products with interactions in its
window, so there it is the products with few of them that lean on their groups. On
MovieLens-100K, with genres as the groups, b = 0.3 raised validation NDCG@10 by 0.3-0.4% on each
of three seeds (docs/benchmarks.md). The pseudo-shoppers' factors are not kept.

Items are solved before users in each iteration, so the final user factors are the exact (or
CG-converged) answer for the final item factors, the same problem fold-in solves for a new
history: a training user folded in lands where the fit left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
from pydantic import Field
from scipy import sparse

from deployments.ranking.cooccurrence import NeighbourTable
from training import threads
from training.interactions import Interactions
from training.models.base import (
    ModelConfig,
    ModelFitError,
    check_trainable,
    load_parts,
    save_parts,
    top_k_rows,
)

# Budgets for the temporaries of one chunk of rows, in array elements (~64 MB in float32):
# interactions x factors for the CG gathers, padded interactions x factors for exact solves.
_GATHER_ELEMENTS = 1 << 24
_MAX_CHUNK_ROWS = 1 << 16
_SOLVE_ELEMENTS = 1 << 23


class ALSConfig(ModelConfig):
    """Defaults: the best of a small grid on MovieLens-100K validation (NDCG@10 0.265)."""

    factors: int = Field(64, ge=1)
    regularization: float = Field(30.0, gt=0)
    alpha: float = Field(2.0, ge=0)
    iterations: int = Field(15, ge=1)
    cg_steps: int = Field(3, ge=0)  # 0: exact solves
    seed: int = 0
    # Iterations of a refit that starts from an earlier fit's item factors (warm_start).
    warm_iterations: int = Field(3, ge=1)
    # A shopper's weights scaled by (their products / the average shopper's)^-exponent, so the
    # most active shoppers do not dominate the item factors (0: off). bench/quality's grid
    # chooses 0.5 on MovieLens-100K validation (docs/benchmarks.md).
    activity_exponent: float = Field(0.0, ge=0.0, le=1.0)
    # Weight of the catalog groups' pseudo-shoppers (0: off; see the module docstring).
    catalog_weight: float = Field(0.0, ge=0.0)


class ALS:
    kind: ClassVar[str] = "als"
    config_type: ClassVar[type[ModelConfig]] = ALSConfig

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()
        self.items = np.zeros(0, dtype=str)
        self.item_factors = np.zeros((0, self.config.factors), dtype=np.float32)
        # The average training shopper's distinct products: activity_exponent's reference, kept
        # so a folded-in history is weighted as a training one was.
        self.mean_activity = 1.0
        # Learnt for the training rows; not saved, since scoring folds histories in.
        self.user_factors = np.zeros((0, self.config.factors), dtype=np.float32)

    def fit(self, data: Interactions, *, warm_start: ALS | None = None) -> None:
        """`warm_start`: an earlier fit (e.g. on the validation split of the same shop) whose
        item factors start this one; items it did not know start random. It then needs only
        `warm_iterations` more, which is what makes refitting a big shop affordable."""
        check_trainable(data.matrix)
        c = self.config
        shoppers = _confidence(data.matrix, c.alpha)
        active = np.diff(shoppers.indptr)  # positive cells only, as damping counts them
        self.mean_activity = float(active[active > 0].mean())
        groups = _catalog_rows(data.groups, c.catalog_weight, c.alpha)
        plain = shoppers if groups is None else sparse.vstack([shoppers, groups]).tocsr()
        by_user = self._damped(plain)
        by_item = by_user.T.tocsr()
        rng = np.random.default_rng(c.seed)
        users = (rng.standard_normal((plain.shape[0], c.factors)) * 0.01).astype(np.float32)
        items = (rng.standard_normal((data.n_items, c.factors)) * 0.01).astype(np.float32)
        iterations = c.iterations
        if warm_start is not None and warm_start.item_factors.shape[1] == c.factors:
            known = {str(item): i for i, item in enumerate(warm_start.items)}
            for j, item in enumerate(np.asarray(data.items, dtype=str)):
                i = known.get(item)
                if i is not None:
                    items[j] = warm_start.item_factors[i]
            users = self._solve(by_user, items, users)  # users from the warm items first
            iterations = c.warm_iterations
        for _ in range(iterations):
            items = self._solve(by_item, users, items)
            users = self._solve(by_user, items, users)
        if not (np.all(np.isfinite(items)) and np.all(np.isfinite(users))):
            raise ModelFitError("ALS factors diverged (not finite); raise regularization")
        self.item_factors, self.user_factors = items, users[: data.n_users]
        self.items = np.asarray(data.items, dtype=str)

    def _solve(
        self, confidence: sparse.csr_matrix, fixed: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        gram = _regularised_gram(fixed, self.config.regularization)
        if self.config.cg_steps == 0:
            return _solve_exact(confidence, fixed, gram)
        out = start.copy()
        _solve_cg(out, confidence, fixed, gram.astype(np.float32), self.config.cg_steps)
        return out

    def fold_in(self, history: sparse.csr_matrix) -> np.ndarray:
        """User factors for histories, from the training objective with the items fixed."""
        gram = _regularised_gram(self.item_factors, self.config.regularization)
        confidence = self._damped(_confidence(history, self.config.alpha))
        return _solve_exact(confidence, self.item_factors, gram)

    def _damped(self, confidence: sparse.csr_matrix) -> sparse.csr_matrix:
        """Each row scaled in place by (its cells / mean_activity)^-activity_exponent."""
        if self.config.activity_exponent > 0:
            cells = np.diff(confidence.indptr)
            scale = (np.maximum(cells, 1) / self.mean_activity) ** -self.config.activity_exponent
            confidence.data *= np.repeat(scale, cells).astype(np.float32)
        return confidence

    def score(self, history: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(self.fold_in(history) @ self.item_factors.T, dtype=np.float32)

    def neighbours(self, top_k: int) -> NeighbourTable:
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        unit = np.divide(
            self.item_factors,
            norms,
            out=np.zeros_like(self.item_factors),
            where=norms > 0,
        )
        n = len(unit)
        step = max(1, _SOLVE_ELEMENTS // max(n, 1))
        blocks = threads.map_blocks(
            lambda lo: top_k_rows(unit[lo : lo + step] @ unit.T, top_k, lo), range(0, n, step)
        )
        cosine = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, 0))
        return NeighbourTable.from_scores(self.kind, self.items, cosine, top_k)

    def save(self, directory: Path) -> None:
        save_parts(
            directory,
            self.config,
            items=self.items,
            item_factors=self.item_factors,
            mean_activity=np.array(self.mean_activity),
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        config, arrays = load_parts(directory, ALSConfig)
        model = cls(config)
        model.items, model.item_factors = arrays["items"], arrays["item_factors"]
        if "mean_activity" in arrays:  # artifacts saved before activity_exponent lack it
            model.mean_activity = float(arrays["mean_activity"])
        return model


def _catalog_rows(
    groups: sparse.csr_matrix | None, weight: float, alpha: float
) -> sparse.csr_matrix | None:
    """The groups as pseudo-shoppers' confidence rows (alpha·w with w = weight), or None."""
    if groups is None or weight <= 0 or groups.nnz == 0:
        return None
    rows = sparse.csr_matrix(groups, dtype=np.float32, copy=True)
    rows.data[rows.data > 0] = weight
    return _confidence(rows, alpha)


def _confidence(matrix: sparse.csr_matrix, alpha: float) -> sparse.csr_matrix:
    """alpha·w on the positive cells: the confidence above the baseline 1 every cell has."""
    out = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[~(out.data > 0)] = 0.0
    out.eliminate_zeros()
    out.sum_duplicates()
    out.data *= np.float32(alpha)
    return out


def _regularised_gram(factors: np.ndarray, regularization: float) -> np.ndarray:
    f = factors.astype(np.float64)
    gram = f.T @ f
    gram[np.diag_indices_from(gram)] += regularization
    return gram


def _row_chunks(indptr: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges holding at most `budget` interactions (a longer row alone)."""
    n = len(indptr) - 1
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(indptr, int(indptr[lo]) + budget, side="right")) - 1
        hi = min(max(hi, lo + 1), lo + _MAX_CHUNK_ROWS, n)
        yield lo, hi
        lo = hi


def _solve_cg(
    x: np.ndarray,
    confidence: sparse.csr_matrix,
    fixed: np.ndarray,
    gram: np.ndarray,
    steps: int,
) -> None:
    """Improves x in place by `steps` conjugate-gradient steps on every row's system
    (gram + Yᵀ diag(alpha·w_u) Y) x_u = Σ_i (1 + alpha·w_ui) y_i."""
    budget = max(1, _GATHER_ELEMENTS // fixed.shape[1])

    def solve(span: tuple[int, int]) -> None:  # chunks write disjoint rows of x
        lo, hi = span
        _cg_chunk(x[lo:hi], confidence[lo:hi], fixed, gram, steps)

    threads.map_blocks(solve, _row_chunks(confidence.indptr, budget))


def _cg_chunk(
    current: np.ndarray,
    chunk: sparse.csr_matrix,
    fixed: np.ndarray,
    gram: np.ndarray,
    steps: int,
) -> None:
    """CG on a chunk of rows in lock-step: each row has its own step sizes, held in vectors."""
    rows = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))
    weights = chunk.data
    gathered = fixed[chunk.indices]  # constant during the solve: gathered once

    def along(values: np.ndarray) -> np.ndarray:
        """Σ_i values_ui · y_i per row, for values on the chunk's interactions."""
        spread = sparse.csr_matrix((values, chunk.indices, chunk.indptr), shape=chunk.shape)
        return np.asarray(spread @ fixed)

    def on_items(vectors: np.ndarray) -> np.ndarray:
        """v_u · y_i for every interaction (u, i) of the chunk."""
        return np.asarray(np.einsum("ij,ij->i", vectors[rows], gathered))

    residual = along(1.0 + weights - weights * on_items(current)) - current @ gram
    direction = residual.copy()
    norm = np.einsum("ij,ij->i", residual, residual)
    for _ in range(steps):
        product = direction @ gram + along(weights * on_items(direction))
        curvature = np.einsum("ij,ij->i", direction, product)
        step = np.divide(norm, curvature, out=np.zeros_like(norm), where=curvature > 0)
        current += step[:, np.newaxis] * direction
        residual -= step[:, np.newaxis] * product
        new_norm = np.einsum("ij,ij->i", residual, residual)
        ratio = np.divide(new_norm, norm, out=np.zeros_like(norm), where=norm > 0)
        direction = residual + ratio[:, np.newaxis] * direction
        norm = new_norm


def _solve_exact(confidence: sparse.csr_matrix, fixed: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Every row's system solved exactly in float64. Rows are sorted by length and padded to
    the longest of their batch, so a batch is one stacked matmul and one stacked solve."""
    n_rows, factors = confidence.shape[0], fixed.shape[1]
    out = np.zeros((n_rows, factors), dtype=np.float32)
    lengths = np.diff(confidence.indptr)
    order = np.argsort(lengths, kind="stable")
    max_rows = max(1, _SOLVE_ELEMENTS // (factors * factors))
    start = 0
    while start < n_rows:
        end = _batch_end(lengths[order], start, max_rows, max(1, _SOLVE_ELEMENTS // factors))
        selected = order[start:end]
        width = int(lengths[selected].max())
        if width == 0:
            start = end  # no interactions: the solution is 0
            continue
        offsets = np.arange(width)
        present = offsets[np.newaxis, :] < lengths[selected][:, np.newaxis]
        positions = np.where(present, confidence.indptr[selected][:, np.newaxis] + offsets, 0)
        weights = np.where(present, confidence.data[positions], 0.0).astype(np.float64)
        # Padding points at a real item but carries zero weight, and is masked out of targets.
        vectors = fixed[confidence.indices[positions]].astype(np.float64)
        scaled = vectors * np.sqrt(weights)[..., np.newaxis]
        systems = gram + np.matmul(scaled.transpose(0, 2, 1), scaled)
        targets = np.einsum("bl,blf->bf", (1.0 + weights) * present, vectors)
        out[selected] = np.linalg.solve(systems, targets[..., np.newaxis])[..., 0]
        start = end
    return out


def _batch_end(sorted_lengths: np.ndarray, start: int, max_rows: int, budget: int) -> int:
    """The end of the batch from `start`: as many rows as fit `budget` once padded to the
    batch's longest (and last, the lengths being sorted) row."""
    lo, hi = start + 1, min(len(sorted_lengths), start + max_rows)
    while lo < hi:
        middle = (lo + hi + 1) // 2
        if (middle - start) * max(int(sorted_lengths[middle - 1]), 1) <= budget:
            lo = middle
        else:
            hi = middle - 1
    return lo
