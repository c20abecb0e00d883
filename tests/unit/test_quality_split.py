"""bench/evaluation.py: the interaction matrix and the per-user 80/10/10 split."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.evaluation import interaction_matrix, random_split, split_sizes


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (100, (80, 10, 10)),
        (25, (21, 2, 2)),  # validation and test are rounded down, train takes the rest
        (20, (16, 2, 2)),
        (10, (8, 1, 1)),
        (9, (7, 1, 1)),  # under 10: one each, as long as train keeps one
        (3, (1, 1, 1)),
        (2, (1, 0, 1)),  # test comes first
        (1, (1, 0, 0)),
        (0, (0, 0, 0)),
    ],
)
def test_split_sizes(n: int, sizes: tuple[int, int, int]) -> None:
    assert split_sizes(n) == sizes


def test_interaction_matrix_is_binary_without_duplicates() -> None:
    matrix = interaction_matrix(np.array([0, 0, 1, 0]), np.array([2, 2, 0, 1]), 2, 3)
    assert matrix.toarray().tolist() == [[0, 1, 1], [1, 0, 0]]
    assert matrix.nnz == 3


def _matrix(counts: list[int], n_items: int = 40) -> sp.csr_matrix:
    users = np.repeat(np.arange(len(counts)), counts)
    items = np.concatenate([np.arange(c) * 3 % n_items for c in counts])
    return interaction_matrix(users, items, len(counts), n_items)


def test_split_partitions_each_users_items_by_the_sizes() -> None:
    counts = [30, 20, 9, 3, 2, 1]
    matrix = _matrix(counts)
    split = random_split(matrix, seed=7)
    parts = (split.train, split.valid, split.test)
    assert (split.train + split.valid + split.test != matrix).nnz == 0
    assert (split.train.multiply(split.valid)).nnz == 0
    assert (split.train.multiply(split.test)).nnz == 0
    assert (split.valid.multiply(split.test)).nnz == 0
    for user, n in enumerate(counts):
        assert tuple(int(p[user].nnz) for p in parts) == split_sizes(n)


def test_split_is_fixed_by_its_seed() -> None:
    matrix = _matrix([30, 25])
    first, again, other = random_split(matrix, 1), random_split(matrix, 1), random_split(matrix, 2)
    assert (first.test != again.test).nnz == 0
    assert (first.valid != again.valid).nnz == 0
    assert (first.test != other.test).nnz > 0


def test_known_items_for_test_include_validation() -> None:
    split = random_split(_matrix([30]), seed=0)
    assert (split.known("valid") != split.train).nnz == 0
    assert (split.known("test") != split.train + split.valid).nnz == 0
    assert split.relevant("valid") is split.valid
    assert split.relevant("test") is split.test
