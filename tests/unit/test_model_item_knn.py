"""Item-kNN similarities on a matrix small enough to count by hand.

Users (binary): u0 {0, 1}, u1 {0, 1}, u2 {0, 2}, u3 {1, 2}, so G_00 = G_11 = 3, G_22 = 2,
G_01 = 2, G_02 = G_12 = 1; n_j (users per item) = 3, 3, 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from training.interactions import Interactions
from training.models.item_knn import ItemKNN, ItemKNNConfig

BASKETS = [[0, 1], [0, 1], [0, 2], [1, 2]]


def small(baskets: list[list[int]] = BASKETS) -> Interactions:
    users = [f"u{u}" for u, items in enumerate(baskets) for _ in items]
    items = [f"i{i}" for items in baskets for i in items]
    return Interactions.from_triples(users, items)


def similarity(**config: object) -> np.ndarray:
    model = ItemKNN(ItemKNNConfig.model_validate(config))
    model.fit(small())
    return np.asarray(model.similarity.toarray())


def test_cosine_with_shrink() -> None:
    s = similarity(shrink=1.0, alpha=0.5)
    expected = np.array(
        [
            [0, 2 / (3 + 1), 1 / (math.sqrt(6) + 1)],
            [2 / (3 + 1), 0, 1 / (math.sqrt(6) + 1)],
            [1 / (math.sqrt(6) + 1), 1 / (math.sqrt(6) + 1), 0],
        ]
    )
    np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_alpha_one_is_the_conditional_probability_of_the_target() -> None:
    s = similarity(shrink=0.0, alpha=1.0)
    # S[i, j] = P(j | i) = G_ij / G_ii
    expected = np.array([[0, 2 / 3, 1 / 3], [2 / 3, 0, 1 / 3], [1 / 2, 1 / 2, 0]])
    np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_pop_exponent_divides_by_the_target_popularity() -> None:
    s = similarity(shrink=0.0, alpha=1.0, pop_exponent=1.0)
    expected = np.array([[0, 2 / 9, 1 / 6], [2 / 9, 0, 1 / 6], [1 / 6, 1 / 6, 0]])
    np.testing.assert_allclose(s, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("weighting", "pair_01"),
    # u4 {0, 1, 2} joins: its pairs count 1/log2(4) or 1/3, the 2-item users' 1/log2(3) or 1/2
    [("none", 3.0), ("log", 2 / math.log2(3) + 1 / 2), ("inverse", 2 / 2 + 1 / 3)],
)
def test_row_weighting_scales_each_users_pairs(weighting: str, pair_01: float) -> None:
    model = ItemKNN(ItemKNNConfig.model_validate({"row_weighting": weighting}))
    gram = model.statistics(small([*BASKETS, [0, 1, 2]]).matrix)
    assert gram.cooccurrence[0, 1] == pytest.approx(pair_01)


def test_each_target_keeps_its_nearest_sources() -> None:
    s = similarity(shrink=0.0, alpha=1.0, neighbours=1)
    # column j keeps only its best source: P(0|1)=2/3 for 0, P(1|0)=2/3 for 1, and for 2 the
    # tie P(2|0) = P(2|1) = 1/3 resolved to the lower index
    expected = np.array([[0, 2 / 3, 1 / 3], [2 / 3, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_scores_sum_the_history_rows() -> None:
    model = ItemKNN(ItemKNNConfig(shrink=0.0, alpha=1.0))
    model.fit(small())
    history = sparse.csr_matrix(np.array([[1.0, 2.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(model.score(history), [[2 * 2 / 3, 2 / 3, 1 / 3 + 2 / 3]], rtol=1e-6)
