"""training/metrics.py: ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import metrics

T, F = True, False
# Three users' top-5 lists: which positions hold a relevant item, and how many relevant items
# each user has in all (user 1 has three more outside the top 5; user 2 none in it).
HITS = np.array([[F, T, F, T, F], [T, F, F, F, F], [F, F, F, F, F]])
N_RELEVANT = np.array([2, 4, 1])
R2, R3, R4 = (1 / math.log2(rank + 1) for rank in (2, 3, 4))  # DCG discounts of ranks 2-4


def test_hit() -> None:
    assert metrics.hit_at_k(HITS, N_RELEVANT, 1).tolist() == [0.0, 1.0, 0.0]
    assert metrics.hit_at_k(HITS, N_RELEVANT, 5).tolist() == [1.0, 1.0, 0.0]


def test_precision_divides_by_k() -> None:
    assert metrics.precision_at_k(HITS, N_RELEVANT, 2).tolist() == [0.5, 0.5, 0.0]
    assert metrics.precision_at_k(HITS, N_RELEVANT, 5).tolist() == pytest.approx([0.4, 0.2, 0])


def test_recall_divides_by_all_relevant_items() -> None:
    assert metrics.recall_at_k(HITS, N_RELEVANT, 2).tolist() == [0.5, 0.25, 0.0]
    assert metrics.recall_at_k(HITS, N_RELEVANT, 5).tolist() == [1.0, 0.25, 0.0]


def test_recall_of_a_user_with_nothing_relevant_is_zero() -> None:
    assert metrics.recall_at_k(np.array([[F, F]]), np.array([0]), 2).tolist() == [0.0]


def test_mrr_is_the_first_hit_only() -> None:
    assert metrics.mrr_at_k(HITS, N_RELEVANT, 1).tolist() == [0.0, 1.0, 0.0]
    assert metrics.mrr_at_k(HITS, N_RELEVANT, 5).tolist() == [0.5, 1.0, 0.0]


def test_ndcg_hand_computed() -> None:
    # user 0: hits at ranks 2 and 4; ideal: its 2 relevant items at ranks 1 and 2.
    # user 1: hit at rank 1; ideal@5: 4 relevant items at ranks 1-4.
    expected = [(R2 + R4) / (1 + R2), 1 / (1 + R2 + R3 + R4), 0.0]
    assert metrics.ndcg_at_k(HITS, N_RELEVANT, 5).tolist() == pytest.approx(expected)
    assert expected[0] == pytest.approx(0.650921, abs=1e-6)


def test_ndcg_ideal_is_capped_at_k() -> None:
    # user 1 has 4 relevant items, but an ideal top 2 holds only 2 of them.
    assert metrics.ndcg_at_k(HITS, N_RELEVANT, 2).tolist() == pytest.approx(
        [R2 / (1 + R2), 1 / (1 + R2), 0.0]
    )


def test_a_perfect_ranking_scores_one_everywhere() -> None:
    hits, n = np.array([[T, T, F]]), np.array([2])
    for name in metrics.METRICS:
        if name != "precision":
            assert metrics.FUNCTIONS[name](hits, n, 3).tolist() == [1.0], name


def test_k_outside_the_list_is_refused() -> None:
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(HITS, N_RELEVANT, 6)
    with pytest.raises(ValueError):
        metrics.hit_at_k(HITS, N_RELEVANT, 0)


def test_all_at_names_every_metric_at_every_k() -> None:
    values = metrics.all_at(HITS, N_RELEVANT, (1, 5))
    assert sorted(values) == sorted(f"{m}@{k}" for m in metrics.METRICS for k in (1, 5))
    assert values["mrr@5"].tolist() == [0.5, 1.0, 0.0]
