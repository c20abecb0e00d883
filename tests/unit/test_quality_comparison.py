"""bench/comparison.py and the report of bench/quality.py, on made-up per-user results."""

from __future__ import annotations

import numpy as np
import pytest

from bench import comparison, peers, quality
from bench.evaluation import Evaluation
from bench.movielens import Interactions
from bench.tuning import ModelResult, SeedResult

USERS = np.arange(200)


def result(name: str, ndcg: list[np.ndarray], valid: float, recall: float = 0.3) -> ModelResult:
    runs = []
    for seed, values in enumerate(ndcg):
        per_query = {"ndcg@10": values, "recall@10": np.full(len(values), recall)}
        for metric in quality.COLUMNS:
            for k in (10, 20):
                per_query.setdefault(f"{metric}@{k}", values)
        evaluation = Evaluation(queries=USERS[: len(values)], per_query=per_query)
        runs.append(SeedResult(seed, {"l2": 300.0}, valid, evaluation, 0.1, 1.0))
    return ModelResult(name, tuple(runs))


def spread(center: float, seed: int) -> np.ndarray:
    return np.clip(center + np.random.default_rng(seed).normal(0, 0.1, len(USERS)), 0, 1)


def test_best_is_chosen_on_validation() -> None:
    good_on_test = result("a", [np.full(200, 0.9)], valid=0.1)
    good_on_valid = result("b", [np.full(200, 0.2)], valid=0.3)
    assert comparison.best([good_on_test, good_on_valid]).name == "b"


def test_wilcoxon_p() -> None:
    assert comparison.wilcoxon_p(np.zeros(50)) == 1.0
    assert comparison.wilcoxon_p(np.random.default_rng(0).normal(0.1, 0.05, 100)) < 1e-6


def test_a_clear_gain_meets_the_targets() -> None:
    nova = result("nova", [spread(0.33, s) + 0.02 for s in range(3)], valid=0.3)
    peer = result("peer", [spread(0.33, s) for s in range(3)], valid=0.2)
    found = comparison.compare(nova, peer)
    assert found.relative_gain == pytest.approx(nova.mean("ndcg@10") / peer.mean("ndcg@10") - 1)
    assert found.relative_gain > 0.02
    assert [t.label for t in found.tests] == ["seed 0", "seed 1", "seed 2", "pooled"]
    assert found.pooled.users == 600
    assert found.pooled.p_value < 1e-6
    lines = "\n".join(comparison.target_lines(found))
    assert f"NDCG@10 {nova.mean('ndcg@10'):.4f} >= 0.29: met" in lines
    assert "NOT met" not in lines


def test_missed_targets_say_by_how_much() -> None:
    nova = result("nova", [np.full(200, 0.28)], valid=0.3, recall=0.2)
    peer = result("peer", [np.full(200, 0.28)], valid=0.2)
    lines = "\n".join(comparison.target_lines(comparison.compare(nova, peer)))
    assert "NDCG@10 0.2800 < 0.29: NOT met, short by 0.0100" in lines
    assert "Recall@10 0.2000 < 0.25: NOT met, short by 0.0500" in lines
    assert "+0.0% (target +2%): NOT met, short by 2.0 percentage points" in lines


def test_results_from_different_splits_are_not_compared() -> None:
    nova = result("nova", [np.full(200, 0.3)], valid=0.3)
    peer = result("peer", [np.full(150, 0.3)], valid=0.2)
    with pytest.raises(ValueError, match="same split"):
        comparison.compare(nova, peer)


def test_sanity_catches_a_broken_order() -> None:
    def named(name: str, value: float) -> ModelResult:
        return result(name, [np.full(10, value)], valid=value)

    ordered = [named(peers.POPULARITY, 0.1), named(peers.ITEM_KNN, 0.2)]
    fine = [*ordered, named(peers.EASE_NAME, 0.3), named(peers.ALS_NAME, 0.3)]
    assert comparison.sanity(fine)[0]
    broken = [*ordered, named(peers.EASE_NAME, 0.15), named(peers.ALS_NAME, 0.3)]
    ok, line = comparison.sanity(broken)
    assert not ok and "BROKEN" in line


def test_report_without_nova_says_so() -> None:
    data = Interactions(np.zeros(3), np.zeros(3), ("1",), ("1", "2"))
    results = [result(peers.POPULARITY, [np.full(200, 0.14)], valid=0.12)]
    text, sane = quality.render(results, set(), [0], 12.0, data, "Measured now.")
    assert "No Nova pipeline registered" in text
    assert "| popularity | l2=300 (1/1) | 0.1400 ± 0.0000 |" in text
    assert "| NDCG@20 |" in text
    assert sane  # not every peer ran: nothing to check


def test_report_with_nova_compares_it_with_the_best_peer() -> None:
    data = Interactions(np.zeros(3), np.zeros(3), ("1",), ("1", "2"))
    results = [
        result("EASE", [spread(0.33, 0)], valid=0.26),
        result("Nova X", [spread(0.33, 0) + 0.01], valid=0.27),
    ]
    text, _ = quality.render(results, {"Nova X"}, [0], 12.0, data, "Measured now.")
    assert "Best Nova pipeline (by validation): Nova X; best peer: EASE." in text
    assert "No Nova pipeline registered" not in text
