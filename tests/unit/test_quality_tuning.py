"""bench/tuning.py: grids are searched on validation only, then tested once, per seed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.evaluation import Candidate, Params, Recommender, interaction_matrix, random_split
from bench.tuning import run, tune

N_USERS, N_ITEMS = 12, 200


def matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(5)
    users = np.repeat(np.arange(N_USERS), 20)
    items = np.concatenate([rng.choice(N_ITEMS, 20, replace=False) for _ in range(N_USERS)])
    return interaction_matrix(users, items, N_USERS, N_ITEMS)


class Oracle:
    """Scores one split's items 1 and everything else 0 (peeking, to make the choice obvious)."""

    def __init__(self, target: sp.csr_matrix, noise: float, seed: int) -> None:
        self.target, self.noise, self.rng = target, noise, np.random.default_rng(seed)

    def fit(self, train: sp.csr_matrix) -> None:
        pass

    def score(self, users: np.ndarray) -> np.ndarray:
        exact = self.target[users].toarray()
        return np.asarray(exact + self.noise * self.rng.random(exact.shape))


def oracle_candidate(data: sp.csr_matrix) -> Candidate:
    """`peek` names the split the model knows; each seed's split is rebuilt from the seed."""

    def factory(params: Params, seed: int) -> Recommender:
        split = random_split(data, seed)
        target = split.valid if params["peek"] == "valid" else split.test
        return Oracle(target, float(params["noise"]), seed)

    return Candidate("oracle", factory, {"peek": ("test", "valid"), "noise": (3.0, 0.0, 10.0)})


def test_configurations_are_the_grids_product() -> None:
    candidate = Candidate("c", lambda p, s: Oracle(sp.csr_matrix((1, 1)), 0, s), {"a": (1, 2)})
    assert candidate.configurations() == [{"a": 1}, {"a": 2}]
    assert Candidate("c", candidate.factory).configurations() == [{}]
    grid = {"a": (1, 2), "b": ("x", "y", "z")}
    assert len(Candidate("c", candidate.factory, grid).configurations()) == 6


def test_the_choice_is_made_on_validation_not_test() -> None:
    data = matrix()
    result = tune(oracle_candidate(data), random_split(data, seed=4))
    # Knowing the test items would win on test; the tuner must not see that.
    assert result.params == {"peek": "valid", "noise": 0.0}
    assert result.valid == pytest.approx(1.0)
    assert result.test.mean("ndcg@10") < 0.5


def test_run_tunes_every_candidate_on_every_seed() -> None:
    data = matrix()
    results = run([oracle_candidate(data)], data, seeds=[0, 1, 2])
    assert [r.name for r in results] == ["oracle"]
    (oracle,) = results
    assert [r.seed for r in oracle.runs] == [0, 1, 2]
    assert oracle.valid_mean() == pytest.approx(1.0)
    assert oracle.std("ndcg@10") >= 0.0
    assert len(oracle.test_means("recall@20")) == 3


def test_run_refuses_two_candidates_with_one_name() -> None:
    data = matrix()
    with pytest.raises(ValueError, match="unique"):
        run([oracle_candidate(data), oracle_candidate(data)], data, seeds=[0])
