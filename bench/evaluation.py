"""The offline evaluation protocol (RecBole's quick-start protocol on implicit feedback).

- Every interaction is a positive; repeated (user, item) pairs count once.
- Per user, a random 80/10/10 train/validation/test split with a fixed seed, sized like
  RecBole's ratio split: validation and test get floor(10% of the user's interactions) each,
  train the rest; a user with fewer than 10 interactions still gets one validation and one test
  item while at least one is left for training (test first). So a user with 2 interactions has
  one in train and one in test, and a user with 1 only trains. No user is dropped: keeping them
  all is what RecBole's split does, and a user without an item in a split simply is not
  averaged over for that split (there is nothing to find). MovieLens-100K has no such user:
  everyone rated at least 20 movies.
- Full ranking over all items, excluding what the user is already known to have: their train
  items when ranking for validation; their train and validation items when ranking for test
  (RecBole excludes both; a model fitted on train would otherwise spend test ranks on the
  validation items, which are real positives but not this split's).
- Metrics @k per user (training/metrics.py), averaged over users with at least one relevant item.

Candidates (peers in bench/peers.py, Nova's pipelines in bench/nova.py) implement `Recommender`
and come with a factory and a small hyperparameter grid; bench/tuning.py searches the grid.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp

from training import evaluation
from training.evaluation import Evaluation

KS = (10, 20)
SHARES = (8, 1, 1)  # train, validation, test, in tenths
Value = float | int | str
Params = Mapping[str, Value]


class Recommender(Protocol):
    def fit(self, train: sp.csr_matrix) -> None:
        """Learn from a binary users x items matrix."""

    def score(self, users: np.ndarray) -> np.ndarray:
        """Dense scores (len(users) x items); higher ranks first."""


Factory = Callable[[Params, int], Recommender]
"""Builds an unfitted model from hyperparameters and a random seed."""


@dataclass(frozen=True)
class Candidate:
    name: str
    factory: Factory
    grid: Mapping[str, Sequence[Value]] = field(default_factory=dict)

    def configurations(self) -> list[dict[str, Value]]:
        """Every combination of the grid's values (one empty configuration for no grid)."""
        keys = list(self.grid)
        combos = itertools.product(*(self.grid[key] for key in keys))
        return [dict(zip(keys, values, strict=True)) for values in combos]


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Binary CSR matrix; duplicates collapse to one."""
    ones = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((ones, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def split_sizes(n: int) -> tuple[int, int, int]:
    """How many of a user's n interactions go to train, validation and test (RecBole's rule)."""
    total = sum(SHARES)
    sizes = [n * share // total for share in SHARES]
    sizes[0] = n - sizes[1] - sizes[2]
    for part in (2, 1):
        if sizes[0] <= 1:
            break
        if 0 < n * SHARES[part] < total:
            sizes[part] += 1
            sizes[0] -= 1
    return sizes[0], sizes[1], sizes[2]


@dataclass(frozen=True)
class Split:
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    seed: int

    def known(self, phase: Literal["valid", "test"]) -> sp.csr_matrix:
        """Items excluded from the ranking when evaluating `phase`."""
        return self.train if phase == "valid" else (self.train + self.valid).tocsr()

    def relevant(self, phase: Literal["valid", "test"]) -> sp.csr_matrix:
        return self.valid if phase == "valid" else self.test


def random_split(matrix: sp.csr_matrix, seed: int) -> Split:
    """Per user, a random 80/10/10 split of the user's items."""
    rng = np.random.default_rng(seed)
    parts: list[list[tuple[int, int]]] = [[], [], []]
    for user in range(matrix.shape[0]):
        items = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]
        shuffled = rng.permutation(items)
        n_train, n_valid, _ = split_sizes(len(items))
        bounds = (0, n_train, n_train + n_valid, len(items))
        for part in range(3):
            parts[part].extend((user, int(i)) for i in shuffled[bounds[part] : bounds[part + 1]])
    train, valid, test = (_from_pairs(pairs, matrix.shape) for pairs in parts)
    return Split(train=train, valid=valid, test=test, seed=seed)


def _from_pairs(pairs: list[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    rows = np.fromiter((u for u, _ in pairs), dtype=np.int64, count=len(pairs))
    cols = np.fromiter((i for _, i in pairs), dtype=np.int64, count=len(pairs))
    return interaction_matrix(rows, cols, *shape)


def evaluate(
    model: Recommender,
    known: sp.csr_matrix,
    relevant: sp.csr_matrix,
    ks: tuple[int, ...] = KS,
    batch_size: int = 1024,
) -> Evaluation:
    """Rank all items for every user with a relevant item, known items excluded (the same
    evaluation a shop's fit validates with, training/evaluation.py)."""
    return evaluation.evaluate(model.score, known, relevant, ks, batch_size)
