"""EASE against Steck's closed form computed directly, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from training.interactions import Interactions
from training.models.base import ModelFitError
from training.models.ease import EASE, EASEConfig


def matrix_data(dense: np.ndarray) -> Interactions:
    n_users, n_items = dense.shape
    return Interactions(
        sparse.csr_matrix(dense.astype(np.float32)),
        np.array([f"u{i}" for i in range(n_users)]),
        np.array([f"i{j}" for j in range(n_items)]),
    )


def test_weights_match_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((30, 7)) < 0.4) * rng.integers(1, 4, (30, 7))
    x[0] = 1  # no empty column
    l2 = 3.0
    precision = np.linalg.inv(x.T @ x + l2 * np.eye(7))
    expected = np.eye(7) - precision / np.diag(precision)[np.newaxis, :]
    model = EASE(EASEConfig(l2=l2))
    model.fit(matrix_data(x))
    np.testing.assert_allclose(model.weights, expected, atol=1e-6)
    assert np.all(np.diag(model.weights) == 0)
    history = sparse.csr_matrix(x[:4].astype(np.float32))
    np.testing.assert_allclose(model.score(history), x[:4] @ expected, rtol=1e-5, atol=1e-5)


def test_too_many_items_are_refused_before_inverting() -> None:
    x = np.ones((3, 5))
    with pytest.raises(ModelFitError, match="max_items=4"):
        EASE(EASEConfig(max_items=4)).fit(matrix_data(x))


def test_a_singular_gram_without_l2_is_a_fit_error() -> None:
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])  # items 0 and 1 are indistinguishable
    with pytest.raises(ModelFitError, match="raise l2"):
        EASE(EASEConfig(l2=0.0)).fit(matrix_data(x))
