"""The peers Nova is measured against: what a merchant's engineer would use instead.

Popularity, item-kNN and EASE are written here (each a few lines of linear algebra); ALS and BPR
come from the `implicit` library (the `bench` extra: pip install -e '.[dev,bench]'), imported
only when fitted so that this module and its tests need no benchmark dependency. Each peer
implements bench.evaluation.Recommender; PEERS pairs each with its factory and its grid.

The dense item x item matrices of item-kNN and EASE are fine for MovieLens-100K (1,682 items);
they are baselines for the evaluation, not code for a 50,000-product shop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.evaluation import Candidate, Params, Recommender


def _dense_rows(matrix: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    return np.asarray(matrix[users].toarray(), dtype=np.float64)


class Popularity:
    """Every user gets the items most often interacted with in train."""

    def __init__(self) -> None:
        self._counts = np.zeros(0)

    def fit(self, train: sp.csr_matrix) -> None:
        self._counts = np.asarray((train > 0).sum(axis=0), dtype=np.float64).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self._counts, (len(users), 1))


def cosine_similarity(train: sp.csr_matrix, shrink: float) -> np.ndarray:
    """Item-item cosine with shrinkage: |U_i & U_j| / (|U_i|^1/2 |U_j|^1/2 + shrink).

    Shrinkage pulls similarities computed from few common users towards zero. The diagonal is
    zero: an item is not its own neighbour.
    """
    binary = (train > 0).astype(np.float64)
    common = np.asarray((binary.T @ binary).toarray())
    norms = np.sqrt(np.diag(common))
    similarity = common / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(similarity, 0.0)
    return similarity


def keep_top_neighbours(similarity: np.ndarray, k: int) -> np.ndarray:
    """Zero all but the k largest entries of each column (the neighbours of that item)."""
    if k >= similarity.shape[0]:
        return similarity
    pruned = np.zeros_like(similarity)
    rows = np.argpartition(-similarity, k - 1, axis=0)[:k]
    columns = np.arange(similarity.shape[1])
    pruned[rows, columns] = similarity[rows, columns]
    return pruned


class ItemKNN:
    """score(u, j) = sum of sim(i, j) over the user's items i among j's k nearest neighbours."""

    def __init__(self, neighbours: int, shrink: float) -> None:
        self.neighbours = neighbours
        self.shrink = shrink
        self._train = sp.csr_matrix((0, 0))
        self._weights = np.zeros((0, 0))

    def fit(self, train: sp.csr_matrix) -> None:
        self._train = train
        self._weights = keep_top_neighbours(cosine_similarity(train, self.shrink), self.neighbours)

    def score(self, users: np.ndarray) -> np.ndarray:
        return _dense_rows(self._train, users) @ self._weights


def ease_weights(train: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE (Steck 2019): argmin ||X - XB||^2 + l2 ||B||^2 subject to diag(B) = 0.

    Closed form: P = (X'X + l2 I)^-1, B_ij = -P_ij / P_jj, B_jj = 0.
    """
    binary = (train > 0).astype(np.float64)
    gram = np.asarray((binary.T @ binary).toarray())
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return np.asarray(weights, dtype=np.float64)


class EASE:
    def __init__(self, l2: float) -> None:
        self.l2 = l2
        self._train = sp.csr_matrix((0, 0))
        self._weights = np.zeros((0, 0))

    def fit(self, train: sp.csr_matrix) -> None:
        self._train = train
        self._weights = ease_weights(train, self.l2)

    def score(self, users: np.ndarray) -> np.ndarray:
        return _dense_rows(self._train, users) @ self._weights


class ImplicitFactorModel:
    """An `implicit` matrix-factorisation model; scores are user . item factor products.

    BLAS is limited to one thread while fitting, as `implicit` asks (its own threads do the
    work; a second thread pool inside each solve only contends with them).
    """

    def __init__(self, kind: str, seed: int, **params: Any) -> None:
        self.kind = kind
        self.seed = seed
        self.params = params
        self._users = np.zeros((0, 0))
        self._items = np.zeros((0, 0))

    def _model_class(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]

        return {"als": AlternatingLeastSquares, "bpr": BayesianPersonalizedRanking}[self.kind]

    def fit(self, train: sp.csr_matrix) -> None:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        # Import implicit first: a limit only applies to the BLAS libraries already loaded.
        model_class = self._model_class()
        with threadpool_limits(1, "blas"):
            model = model_class(random_state=self.seed, **self.params)
            model.fit(train.astype(np.float32).tocsr(), show_progress=False)
        self._users = np.asarray(model.user_factors, dtype=np.float64)
        self._items = np.asarray(model.item_factors, dtype=np.float64)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self._users[users] @ self._items.T)


def _popularity(params: Params, seed: int) -> Recommender:
    return Popularity()


def _item_knn(params: Params, seed: int) -> Recommender:
    return ItemKNN(neighbours=int(params["neighbours"]), shrink=float(params["shrink"]))


def _ease(params: Params, seed: int) -> Recommender:
    return EASE(l2=float(params["l2"]))


def _als(params: Params, seed: int) -> Recommender:
    return ImplicitFactorModel(
        "als",
        seed,
        factors=int(params["factors"]),
        regularization=float(params["regularization"]),
        alpha=float(params["alpha"]),
        iterations=int(params["iterations"]),
    )


def _bpr(params: Params, seed: int) -> Recommender:
    return ImplicitFactorModel(
        "bpr",
        seed,
        factors=int(params["factors"]),
        learning_rate=float(params["learning_rate"]),
        regularization=float(params["regularization"]),
        iterations=int(params["iterations"]),
        # One thread: with more, its lock-free SGD depends on thread timing and no two runs of
        # the same seed agree; the single-thread fit is only ~1.3x slower here.
        num_threads=1,
    )


POPULARITY, ITEM_KNN, EASE_NAME = "popularity", "item-kNN", "EASE"
ALS_NAME, BPR_NAME = "ALS (implicit)", "BPR (implicit)"

# Grids were sized on seed 0's validation split only. implicit's regularization is not scaled
# by the number of interactions, hence the large values; its BPR overfits within ~100 epochs
# on this data set, hence the short schedules.
PEERS: tuple[Candidate, ...] = (
    Candidate(POPULARITY, _popularity),
    Candidate(ITEM_KNN, _item_knn, {"neighbours": (50, 100, 200, 400), "shrink": (0, 10, 100)}),
    Candidate(EASE_NAME, _ease, {"l2": (100, 200, 300, 500, 800, 1500)}),
    Candidate(
        ALS_NAME,
        _als,
        {
            "factors": (64, 128),
            "regularization": (10.0, 20.0, 40.0),
            "alpha": (1.0, 2.0, 4.0),
            "iterations": (15,),
        },
    ),
    Candidate(
        BPR_NAME,
        _bpr,
        {
            "factors": (16, 32, 64),
            "learning_rate": (0.0025, 0.005),
            "regularization": (0.003,),
            "iterations": (80, 200),
        },
    ),
)
