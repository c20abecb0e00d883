"""bench/evaluation.py: full ranking with known items excluded, per-user metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.evaluation import Split, evaluate
from training.evaluation import top_k


def csr(rows: list[list[int]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


class Fixed:
    """Scores every user with the given rows."""

    def __init__(self, scores: list[list[float]]) -> None:
        self.scores = np.array(scores, dtype=np.float64)

    def fit(self, train: sp.csr_matrix) -> None:
        pass

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.scores[users]


# Two users, five items. User 0: train {0}, validation {1}, test {2}. User 1: train {3},
# validation nothing, test {4}.
SPLIT = Split(
    train=csr([[1, 0, 0, 0, 0], [0, 0, 0, 1, 0]]),
    valid=csr([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]),
    test=csr([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]),
    seed=0,
)


def test_top_k_is_best_first() -> None:
    assert top_k(np.array([[0.1, 0.9, 0.5, 0.7]]), 3).tolist() == [[1, 3, 2]]


def test_train_items_never_take_a_rank() -> None:
    # The model loves user 0's train item; excluded, the validation item is first.
    model = Fixed([[9, 5, 1, 0, 0], [0, 0, 0, 0, 0]])
    result = evaluate(model, SPLIT.known("valid"), SPLIT.relevant("valid"), ks=(1, 2))
    assert result.queries.tolist() == [0]  # user 1 has nothing to find in validation
    assert result.per_query["hit@1"].tolist() == [1.0]


def test_test_ranking_excludes_validation_items_too() -> None:
    model = Fixed([[9, 8, 7, 0, 0], [0, 0, 0, 9, 8]])
    result = evaluate(model, SPLIT.known("test"), SPLIT.relevant("test"), ks=(1,))
    assert result.queries.tolist() == [0, 1]
    assert result.per_query["ndcg@1"].tolist() == [1.0, 1.0]
    without_exclusion = evaluate(model, SPLIT.train, SPLIT.test, ks=(1,))
    assert without_exclusion.per_query["ndcg@1"].tolist() == [0.0, 1.0]


def test_means_average_over_evaluated_users_only() -> None:
    model = Fixed([[0, 0, 9, 0, 0], [0, 0, 0, 0, 0]])  # finds user 0's test item, not user 1's
    result = evaluate(model, SPLIT.known("test"), SPLIT.relevant("test"), ks=(1,))
    assert result.mean("hit@1") == 0.5
    assert set(result.per_query) == {
        f"{m}@1" for m in ("ndcg", "recall", "mrr", "hit", "precision")
    }


def test_batches_give_the_same_answer() -> None:
    model = Fixed([[0, 3, 2, 1, 0], [4, 0, 1, 0, 2]])
    whole = evaluate(model, SPLIT.known("test"), SPLIT.relevant("test"), ks=(2,))
    batched = evaluate(model, SPLIT.known("test"), SPLIT.relevant("test"), ks=(2,), batch_size=1)
    for name, values in whole.per_query.items():
        assert batched.per_query[name].tolist() == values.tolist()


def test_wrong_shapes_and_nan_are_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        evaluate(Fixed([[0, 0, 0], [0, 0, 0]]), SPLIT.train, SPLIT.test, ks=(1,))
    nan = Fixed([[np.nan, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="NaN"):
        evaluate(nan, SPLIT.train, SPLIT.test, ks=(1,))
    # A cut-off beyond the catalog ranks every item; the positions past it are empty.
    deep = evaluate(Fixed([[0, 1, 2, 3, 4]] * 2), SPLIT.train, SPLIT.test, ks=(5, 6))
    assert deep.mean("hit@6") == deep.mean("hit@5")
    assert deep.mean("precision@6") == pytest.approx(deep.mean("precision@5") * 5 / 6)


def test_a_view_of_the_models_own_scores_is_not_written_into() -> None:
    """The evaluation sets known items to -inf in the scores; a scorer that hands out a view
    of an array it keeps gets that array back untouched."""
    kept = np.array([[9.0, 5, 1, 0, 0], [0, 0, 0, 9, 8]])

    class Viewing(Fixed):
        def score(self, users: np.ndarray) -> np.ndarray:
            return kept[users.min() : users.max() + 1]

    result = evaluate(Viewing([]), SPLIT.known("valid"), SPLIT.relevant("valid"), ks=(1,))
    assert result.per_query["hit@1"].tolist() == [1.0]
    assert kept.tolist() == [[9.0, 5, 1, 0, 0], [0, 0, 0, 9, 8]]
