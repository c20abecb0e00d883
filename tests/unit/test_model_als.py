"""ALS against the Hu-Koren-Volinsky objective, computed densely here."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from training.interactions import Interactions
from training.models import als
from training.models.als import ALS, ALSConfig


def data(seed: int = 0, n_users: int = 60, n_items: int = 25) -> Interactions:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.2) * rng.integers(1, 4, (n_users, n_items))
    return Interactions(
        sparse.csr_matrix(dense.astype(np.float32)),
        np.array([f"u{i}" for i in range(n_users)]),
        np.array([f"i{j:02d}" for j in range(n_items)]),
    )


def objective(model: ALS, weights: np.ndarray) -> float:
    c = model.config
    preference = (weights > 0).astype(np.float64)
    confidence = 1.0 + c.alpha * weights
    x = model.user_factors.astype(np.float64)
    y = model.item_factors.astype(np.float64)
    error = confidence * (preference - x @ y.T) ** 2
    return float(error.sum() + c.regularization * ((x**2).sum() + (y**2).sum()))


def fit(config: ALSConfig, interactions: Interactions) -> ALS:
    model = ALS(config)
    model.fit(interactions)
    return model


@pytest.mark.parametrize(("cg_steps", "slack"), [(0, 1e-9), (3, 1e-5)])
def test_objective_never_increases_over_iterations(cg_steps: int, slack: float) -> None:
    interactions = data()
    weights = interactions.matrix.toarray().astype(np.float64)
    losses = [
        objective(
            fit(
                ALSConfig(
                    factors=5, alpha=4.0, regularization=0.3, iterations=n, cg_steps=cg_steps
                ),
                interactions,
            ),
            weights,
        )
        for n in range(1, 9)
    ]
    assert all(b <= a * (1 + slack) for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.8 * losses[0]


def test_fold_in_solves_the_training_objective_for_a_history() -> None:
    interactions = data(1)
    model = fit(ALSConfig(factors=6, alpha=3.0, regularization=0.5, iterations=5), interactions)
    history = interactions.matrix[:5]
    folded = model.fold_in(history).astype(np.float64)
    y = model.item_factors.astype(np.float64)
    for u in range(5):
        w = history[u].toarray().ravel().astype(np.float64)
        confidence = 1.0 + model.config.alpha * w
        system = y.T @ (confidence[:, np.newaxis] * y) + model.config.regularization * np.eye(6)
        target = y.T @ (confidence * (w > 0))
        np.testing.assert_allclose(system @ folded[u], target, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("cg_steps", "tolerance"), [(0, 1e-5), (3, 0.05)])
def test_fold_in_of_a_training_user_lands_on_its_learnt_vector(
    cg_steps: int, tolerance: float
) -> None:
    interactions = data(2)
    config = ALSConfig(factors=6, alpha=3.0, regularization=0.5, iterations=20, cg_steps=cg_steps)
    model = fit(config, interactions)
    folded = model.fold_in(interactions.matrix)
    error = np.linalg.norm(folded - model.user_factors) / np.linalg.norm(model.user_factors)
    assert error < tolerance


def test_the_seed_decides_the_factors() -> None:
    interactions = data()
    first = fit(ALSConfig(factors=4, seed=1), interactions)
    again = fit(ALSConfig(factors=4, seed=1), interactions)
    other = fit(ALSConfig(factors=4, seed=2), interactions)
    np.testing.assert_array_equal(first.item_factors, again.item_factors)
    assert not np.allclose(first.item_factors, other.item_factors)


@pytest.mark.parametrize("cg_steps", [0, 3])
def test_chunked_solves_match_one_chunk(cg_steps: int, monkeypatch: pytest.MonkeyPatch) -> None:
    interactions = data(3)
    config = ALSConfig(factors=4, iterations=3, cg_steps=cg_steps)
    whole = fit(config, interactions)
    # a few interactions (and padded rows) per chunk: many chunks, rows of mixed lengths
    monkeypatch.setattr(als, "_GATHER_ELEMENTS", 4 * 7)
    monkeypatch.setattr(als, "_SOLVE_ELEMENTS", 4 * 9)
    chunked = fit(config, interactions)
    np.testing.assert_allclose(chunked.item_factors, whole.item_factors, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        chunked.score(interactions.matrix), whole.score(interactions.matrix), atol=1e-4
    )


def test_an_empty_history_scores_zero() -> None:
    model = fit(ALSConfig(factors=4), data())
    scores = model.score(sparse.csr_matrix((2, 25), dtype=np.float32))
    assert np.all(scores == 0)


def test_a_warm_start_reaches_a_full_fit_in_a_few_iterations() -> None:
    """Refitting a shop on its whole window from the validated fit's item factors: a few
    iterations land where a full fit from scratch does, new items included."""
    train, whole = data(2, n_items=25), data(3, n_items=28)  # three items only in the whole
    config = ALSConfig(factors=6, alpha=3.0, regularization=0.5, iterations=30, warm_iterations=3)
    previous = fit(config, train)
    weights = whole.matrix.toarray().astype(np.float64)
    warm = ALS(config)
    warm.fit(whole, warm_start=previous)
    cold_short = fit(config.model_copy(update={"iterations": 3}), whole)
    cold_full = fit(config, whole)
    full, warm_loss, short = (objective(m, weights) for m in (cold_full, warm, cold_short))
    assert warm_loss < short  # the start is worth something
    assert warm_loss < 1.1 * full
    assert warm.item_factors.shape == (28, 6) and np.isfinite(warm.item_factors).all()


def test_activity_exponent_damps_each_history_by_its_size() -> None:
    """Fold-in solves the objective with a user's weights scaled by (their items / the mean
    training user's)^-exponent, the mean learnt at fit time."""
    interactions = data(4)
    config = ALSConfig(factors=6, alpha=3.0, regularization=0.5, iterations=5)
    model = fit(config.model_copy(update={"activity_exponent": 0.5}), interactions)
    items_per_user = np.diff(interactions.matrix.indptr)
    assert model.mean_activity == pytest.approx(items_per_user[items_per_user > 0].mean())
    history = interactions.matrix[:5]
    folded = model.fold_in(history).astype(np.float64)
    y = model.item_factors.astype(np.float64)
    for u in range(5):
        w = history[u].toarray().ravel().astype(np.float64)
        damped = w * (np.count_nonzero(w) / model.mean_activity) ** -0.5
        confidence = 1.0 + config.alpha * damped
        system = y.T @ (confidence[:, np.newaxis] * y) + config.regularization * np.eye(6)
        target = y.T @ (confidence * (w > 0))
        np.testing.assert_allclose(system @ folded[u], target, rtol=1e-4, atol=1e-4)
    # and it changes the fit: the most active users no longer weigh the same
    plain = fit(config, interactions)
    assert not np.allclose(plain.item_factors, model.item_factors, atol=1e-3)


def test_a_loaded_model_folds_in_with_the_fitted_mean_activity(tmp_path: Path) -> None:
    interactions = data(5)
    model = fit(ALSConfig(factors=4, activity_exponent=0.5), interactions)
    model.save(tmp_path)
    loaded = ALS.load(tmp_path)
    assert loaded.mean_activity == model.mean_activity
    few = interactions.matrix[:3]  # the mean comes from the fit, not from these rows
    np.testing.assert_array_equal(loaded.score(few), model.score(few))


def two_groups(catalog_weight: float) -> tuple[ALS, Interactions]:
    """Items 0-4 form group A, 5-9 group B; shoppers of A buy among 0-3, of B among 5-8, so
    items 4 and 9 are new: nobody has interacted with them, only their group says what they
    are."""
    rng = np.random.default_rng(3)
    dense = np.zeros((40, 10), dtype=np.float32)
    for u in range(40):
        pool = np.arange(0, 4) if u < 20 else np.arange(5, 9)
        dense[u, rng.choice(pool, size=2, replace=False)] = 1.0
    groups = sparse.csr_matrix(np.array([[1] * 5 + [0] * 5, [0] * 5 + [1] * 5], dtype=np.float32))
    data = Interactions(
        sparse.csr_matrix(dense),
        np.array([f"u{i}" for i in range(40)]),
        np.array([f"i{j}" for j in range(10)]),
        groups,
    )
    model = ALS(
        ALSConfig(
            factors=4, regularization=0.1, alpha=5.0, iterations=10, catalog_weight=catalog_weight
        )
    )
    model.fit(data)
    return model, data


def test_catalog_groups_give_a_new_item_factors_from_its_group() -> None:
    model, _ = two_groups(catalog_weight=1.0)
    assert model.user_factors.shape == (40, 4)  # the groups' pseudo-shoppers are not kept
    fan_of_a = sparse.csr_matrix(np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
    scores = model.score(fan_of_a)[0]
    assert scores[4] > scores[9] + 0.1, scores  # new item of A above new item of B
    similar = {pid for pid, _, _ in model.neighbours(3).of("i4")}
    assert similar and similar <= {"i0", "i1", "i2", "i3"}, similar


def test_without_catalog_weight_groups_change_nothing() -> None:
    with_groups, data = two_groups(catalog_weight=0.0)
    plain = ALS(with_groups.config)
    plain.fit(Interactions(data.matrix, data.users, data.items))
    np.testing.assert_array_equal(with_groups.item_factors, plain.item_factors)
    # A new item stays at zero: nothing tells it apart.
    np.testing.assert_allclose(with_groups.item_factors[[4, 9]], 0.0, atol=1e-6)


def test_groups_must_cover_the_same_items() -> None:
    base = data()
    with pytest.raises(ValueError, match="groups"):
        Interactions(base.matrix, base.users, base.items, sparse.csr_matrix((2, 3)))
    shard = Interactions(base.matrix, base.users, base.items, sparse.csr_matrix((2, 25)))
    assert shard.rows(np.arange(5)).groups is shard.groups
