"""The contract every registered model keeps (training/models/base.py), one suite for all.

The data has planted structure: two disjoint groups of items, each consumed by its own users.
A personalised model must recommend group-A items to a group-A history; popularity, which
ignores the history, must recommend the most popular item the history lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pydantic
import pytest
from scipy import sparse

from training.interactions import Interactions
from training.models import MODELS, build, load
from training.models.base import GramModel, Model, ModelFitError, recommend

# Small-data settings: defaults are sized for shops (an L2 of 200 would drown 40 users).
CONFIGS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "item_knn": {"neighbours": 5, "shrink": 1.0, "alpha": 0.6, "row_weighting": "log"},
    "ease": {"l2": 5.0},
    "als": {"factors": 6, "iterations": 8, "regularization": 0.5, "alpha": 5.0, "seed": 3},
    "co_purchase": {"min_support": 2},
}
KINDS = sorted(MODELS)
GRAM_KINDS = [kind for kind in KINDS if hasattr(MODELS[kind], "statistics")]
GROUP_A = [f"a{i}" for i in range(8)]
GROUP_B = [f"b{i}" for i in range(8)]


def planted(seed: int = 7) -> Interactions:
    """40 users (or orders) each taking 3-5 items of one group, with weights 1-3."""
    rng = np.random.default_rng(seed)
    users: list[str] = []
    items: list[str] = []
    weights: list[float] = []
    for u in range(40):
        group = GROUP_A if u % 2 == 0 else GROUP_B
        # a skewed draw, so popularity has a clear order within each group
        chosen = rng.choice(group, size=int(rng.integers(3, 6)), replace=False, p=_skew(8))
        for item in chosen:
            users.append(f"u{u:02d}")
            items.append(str(item))
            weights.append(float(rng.integers(1, 4)))
    return Interactions.from_triples(users, items, weights)


def _skew(n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1)
    return np.asarray(p / p.sum())


def history(data: Interactions, labels: list[str]) -> sparse.csr_matrix:
    cols = np.searchsorted(data.items, labels)
    assert list(data.items[cols]) == labels
    return sparse.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (np.zeros(len(cols), dtype=int), cols)),
        shape=(1, data.n_items),
    )


def fitted(kind: str, data: Interactions | None = None) -> Model:
    model = build(kind, CONFIGS[kind])
    model.fit(data if data is not None else planted())
    return model


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_registered_kind_has_a_test_config() -> None:
    assert set(CONFIGS) == set(MODELS)


def test_scores_are_dense_finite_float32(kind: str) -> None:
    data = planted()
    model = fitted(kind, data)
    scores = model.score(data.matrix[:5])
    assert scores.shape == (5, data.n_items)
    assert scores.dtype == np.float32
    assert np.all(np.isfinite(scores))
    assert list(model.items) == list(data.items)


def test_top_recommendation_follows_the_planted_group(kind: str) -> None:
    data = planted()
    model = fitted(kind, data)
    seen = ["a1", "a2", "a3"]
    (top,), _ = recommend(model, history(data, seen), 1)
    if kind == "popularity":
        totals = np.asarray(data.matrix.sum(axis=0)).ravel()
        totals[np.searchsorted(data.items, seen)] = -np.inf
        assert top == int(np.argmax(totals))
    else:
        assert data.items[top[0]] in GROUP_A


def test_recommend_excludes_seen_items(kind: str) -> None:
    data = planted()
    model = fitted(kind, data)
    rows = data.matrix[:6]
    idx, scores = recommend(model, rows, data.n_items)
    for r in range(rows.shape[0]):
        seen = set(rows[r].indices)
        finite = idx[r][np.isfinite(scores[r])]
        assert seen.isdisjoint(finite)
        assert len(finite) == data.n_items - len(seen)
        assert np.all(np.diff(scores[r][np.isfinite(scores[r])]) <= 0)


def test_save_load_round_trip_scores_identically(kind: str, tmp_path: Path) -> None:
    data = planted()
    model = fitted(kind, data)
    model.save(tmp_path / "model")
    loaded = load(kind, tmp_path / "model")
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert list(loaded.items) == list(model.items)
    np.testing.assert_array_equal(loaded.score(data.matrix), model.score(data.matrix))
    before, after = model.neighbours(4), loaded.neighbours(4)
    np.testing.assert_array_equal(after.neighbours, before.neighbours)
    np.testing.assert_array_equal(after.scores, before.scores)
    np.testing.assert_array_equal(after.support, before.support)
    assert after.baskets == before.baskets


def test_saved_files_need_no_pickle(kind: str, tmp_path: Path) -> None:
    fitted(kind).save(tmp_path)
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_fit_is_deterministic(kind: str) -> None:
    data = planted()
    first, second = fitted(kind, data), fitted(kind, data)
    np.testing.assert_array_equal(first.score(data.matrix), second.score(data.matrix))


def test_config_rejects_unknown_keys(kind: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="neighbors"):
        build(kind, {**CONFIGS[kind], "neighbors": 5})


@pytest.mark.parametrize(
    "data",
    [
        Interactions.from_triples([], [], item_vocabulary=["a", "b", "c"]),
        Interactions.from_triples(["u1", "u2"], ["a", "a"]),
        Interactions.from_triples(["u1", "u2"], ["a", "b"], [0.0, 0.0]),
    ],
    ids=["no-interactions", "one-item", "zero-weights"],
)
def test_data_without_signal_is_refused(kind: str, data: Interactions) -> None:
    with pytest.raises(ModelFitError):
        build(kind, CONFIGS[kind]).fit(data)


def test_gram_models_need_two_items_in_some_row(gram_kind: str) -> None:
    one_each = Interactions.from_triples(["u1", "u2", "u3"], ["a", "b", "b"])
    with pytest.raises(ModelFitError, match="share a row"):
        build(gram_kind, CONFIGS[gram_kind]).fit(one_each)


def test_neighbour_table_is_well_formed(kind: str) -> None:
    data = planted()
    model = fitted(kind, data)
    top_k = 3
    table = model.neighbours(top_k)
    assert table.kind == kind
    assert list(table.product_ids) == list(model.items)
    assert len(table.indptr) == data.n_items + 1
    sizes = np.diff(table.indptr)
    assert np.all(sizes <= top_k)
    assert sizes.sum() > 0
    assert len(table.neighbours) == len(table.scores) == len(table.support)
    for i in range(data.n_items):
        lo, hi = table.indptr[i], table.indptr[i + 1]
        row, scores = table.neighbours[lo:hi], table.scores[lo:hi]
        assert i not in row
        assert len(set(row.tolist())) == len(row)
        assert np.all(scores > 0)
        assert np.all(np.diff(scores) <= 0)


def test_neighbour_table_holds_the_planted_neighbour(kind: str) -> None:
    data = planted()
    table = fitted(kind, data).neighbours(3)
    ((best, _, _), *_) = table.of("a2")
    if kind == "popularity":
        totals = np.asarray(data.matrix.sum(axis=0)).ravel()
        totals[np.searchsorted(data.items, "a2")] = -np.inf
        assert best == data.items[np.argmax(totals)]
    else:
        assert best in GROUP_A


@pytest.fixture(params=GRAM_KINDS)
def gram_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_shard_statistics_add_up_to_the_whole(gram_kind: str) -> None:
    data = planted()
    model = cast(GramModel, build(gram_kind, CONFIGS[gram_kind]))
    odd = np.arange(data.n_users) % 3 == 0
    merged = model.statistics(data.matrix[odd]).merge(model.statistics(data.matrix[~odd]))
    whole = model.statistics(data.matrix)
    assert merged.rows == whole.rows
    np.testing.assert_allclose(merged.cooccurrence.toarray(), whole.cooccurrence.toarray())
    np.testing.assert_allclose(merged.totals, whole.totals)
    np.testing.assert_array_equal(merged.counts, whole.counts)


def test_fit_from_merged_statistics_equals_fit(gram_kind: str) -> None:
    data = planted()
    direct = fitted(gram_kind, data)
    sharded = cast(GramModel, build(gram_kind, CONFIGS[gram_kind]))
    shards = [data.matrix[np.arange(data.n_users) % 4 == r] for r in range(4)]
    gram = sharded.statistics(shards[0])
    for shard in shards[1:]:
        gram = gram.merge(sharded.statistics(shard))
    sharded.fit_statistics(gram, data.items)
    np.testing.assert_allclose(
        sharded.score(data.matrix), direct.score(data.matrix), rtol=1e-5, atol=1e-6
    )


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="item_knn"):
        build("item-knn", {})


def test_registry_kinds_match_their_classes() -> None:
    assert all(cls.kind == kind for kind, cls in MODELS.items())
