"""bench/peers.py: popularity, item-kNN and EASE on matrices small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from bench import peers

# users x items: item 0 has users {0, 1}, item 1 {0, 1, 2}, item 2 {1, 2}.
X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))


def test_popularity_scores_train_counts_for_everyone() -> None:
    model = peers.Popularity()
    model.fit(X)
    assert model.score(np.array([0, 2])).tolist() == [[2, 3, 2], [2, 3, 2]]


def test_cosine_with_shrinkage() -> None:
    similarity = peers.cosine_similarity(X, shrink=0.0)
    assert similarity[0, 1] == pytest.approx(2 / math.sqrt(2 * 3))
    assert similarity[0, 2] == pytest.approx(1 / 2)
    assert similarity[1, 2] == pytest.approx(2 / math.sqrt(3 * 2))
    assert np.allclose(similarity, similarity.T)
    assert np.diag(similarity).tolist() == [0, 0, 0]
    shrunk = peers.cosine_similarity(X, shrink=4.0)
    assert shrunk[0, 2] == pytest.approx(1 / (2 + 4))


def test_keep_top_neighbours_keeps_each_columns_largest() -> None:
    similarity = np.array([[0.0, 0.9, 0.2], [0.9, 0.0, 0.4], [0.2, 0.4, 0.0]])
    pruned = peers.keep_top_neighbours(similarity, 1)
    assert pruned.tolist() == [[0, 0.9, 0], [0.9, 0, 0.4], [0, 0, 0]]
    assert peers.keep_top_neighbours(similarity, 3) is similarity


def test_item_knn_sums_the_similarities_of_the_users_items() -> None:
    model = peers.ItemKNN(neighbours=2, shrink=0.0)
    model.fit(X)
    s = peers.cosine_similarity(X, 0.0)
    # user 0 has items 0 and 1; item 2's neighbours are items 0 and 1.
    assert model.score(np.array([0]))[0, 2] == pytest.approx(s[0, 2] + s[1, 2])


def test_ease_columns_are_ridge_regressions_on_the_other_items() -> None:
    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((30, 6)) < 0.4).astype(np.float32))
    l2 = 2.5
    weights = peers.ease_weights(train, l2)
    dense = train.toarray().astype(np.float64)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        a = dense[:, others]
        ridge = np.linalg.solve(a.T @ a + l2 * np.eye(5), a.T @ dense[:, j])
        assert weights[others, j] == pytest.approx(ridge, abs=1e-9)
        assert weights[j, j] == 0.0


def test_ease_scores_are_the_users_rows_times_the_weights() -> None:
    model = peers.EASE(l2=1.0)
    model.fit(X)
    expected = X.toarray() @ peers.ease_weights(X, 1.0)
    assert np.allclose(model.score(np.array([0, 1, 2])), expected)


def test_every_peer_has_a_unique_name_and_a_buildable_grid() -> None:
    names = [candidate.name for candidate in peers.PEERS]
    assert len(set(names)) == len(names)
    for candidate in peers.PEERS:
        for params in candidate.configurations():
            model = candidate.factory(params, 0)
            assert hasattr(model, "fit") and hasattr(model, "score")
