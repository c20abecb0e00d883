"""training.topk.largest picks each row's k largest entries exactly as a stable sort would (ties
to the lower column), whatever the row holds: ties, -inf, NaN, rows of zeros, integers, narrow
and wide rows."""

from __future__ import annotations

import numpy as np
import pytest

from training import topk


def _expected(values: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of a stable sort by value descending (NaN as -inf), in column order."""
    ranked = np.where(np.isnan(values), -np.inf, values) if values.dtype.kind == "f" else values
    order = np.argsort(-ranked.astype(np.float64), axis=1, kind="stable")
    return np.sort(order[:, : min(k, values.shape[1])], axis=1)


def _check(values: np.ndarray, k: int) -> None:
    np.testing.assert_array_equal(topk.largest(values, k), _expected(values, k))


@pytest.mark.parametrize("width", [7, 5000, 50_000])
@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_rows(width: int, k: int, dtype: type) -> None:
    rng = np.random.default_rng(width + k)
    _check(rng.standard_normal((37, width)).astype(dtype), k)


def test_rows_with_ties_minus_infinity_nan_and_zeros() -> None:
    rng = np.random.default_rng(1)
    width, k = 20_000, 20
    values = rng.integers(0, 50, size=(12, width)).astype(np.float64)  # many ties
    values[1] = 0.0  # a row of zeros: every entry ties
    values[2, :] = -np.inf
    values[2, [5, 900, 19_999]] = [1.0, 2.0, 3.0]  # fewer finite entries than k
    values[3, ::3] = np.nan
    values[4, :] = np.nan  # nothing but NaN
    values[5, 100:] = -np.inf  # the top is in the first block only
    values[6] = np.where(rng.random(width) < 0.999, 0.0, rng.random(width))  # sparse positives
    values[7, :] = 1.0
    values[7, -1] = 2.0  # the best entry in the remainder past the last whole block
    _check(values, k)


def test_integer_rows() -> None:
    rng = np.random.default_rng(2)
    _check(rng.integers(-1000, 1000, size=(9, 30_000)), 25)


def test_k_at_or_beyond_the_width_takes_every_column() -> None:
    values = np.arange(12.0).reshape(3, 4)
    assert sorted(topk.largest(values, 4)[0].tolist()) == [0, 1, 2, 3]
    assert topk.largest(values, 9).shape == (3, 4)
    assert topk.largest(values, 0).shape == (3, 0)


def test_many_rows_go_in_chunks() -> None:
    rng = np.random.default_rng(3)
    _check(rng.standard_normal((300, 50_000)).astype(np.float32), 50)


def test_a_non_contiguous_view() -> None:
    rng = np.random.default_rng(4)
    values = rng.standard_normal((40, 60_000))[::2, 5:]
    _check(values, 30)


def test_one_dimensional_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2-d"):
        topk.largest(np.zeros(10), 3)


def test_a_block_mixing_screened_rows_and_rows_partitioned_whole() -> None:
    rng = np.random.default_rng(5)
    values = rng.standard_normal((16, 40_000))
    values[::3] = rng.integers(0, 5, size=(6, 40_000))  # ties: too many entries at t
    values[1, :] = np.nan
    values[4, 7:] = -np.inf
    _check(values, 20)


def test_sparse_scores_take_the_screened_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows mostly of zeros (item-kNN's scores) with many, few or no positive entries, and
    known items at -inf, are answered without partitioning whole rows."""

    def refuse(values: np.ndarray, k: int) -> np.ndarray:
        raise AssertionError("a row was partitioned whole")

    rng = np.random.default_rng(6)
    width, k = 50_000, 20
    values = np.zeros((8, width))
    for row, positives in enumerate([0, 3, 19, 20, 21, 60, 300, 900]):
        values[row, rng.choice(width, positives, replace=False)] = rng.random(positives)
    values[:, rng.choice(width, 200, replace=False)] = -np.inf
    values[5, :5000] = 0.5  # ties above zero in one corner
    expected = _expected(values, k)
    monkeypatch.setattr(topk, "_whole", refuse)
    np.testing.assert_array_equal(topk.largest(values, k), expected)


def test_dense_rows_are_answered_by_gathering_a_few_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows without NaN or mass ties at the threshold (a model's dense scores, with known
    items at -inf) never reach the screening or whole-row paths."""

    def refuse(values: np.ndarray, k: int) -> np.ndarray:
        raise AssertionError("a row went past the first path")

    rng = np.random.default_rng(7)
    values = rng.standard_normal((50, 50_003)).astype(np.float32)  # a remainder block too
    values[:, rng.choice(50_003, 300, replace=False)] = -np.inf
    values[0, -2] = 100.0  # the best entry in the remainder
    values[1, :8] = 50.0  # ties among the best
    expected = {k: _expected(values, k) for k in (1, 10, 100)}
    monkeypatch.setattr(topk, "_screened", refuse)
    monkeypatch.setattr(topk, "_whole", refuse)
    for k, want in expected.items():
        np.testing.assert_array_equal(topk.largest(values, k), want)
