"""Re-ranker features (deployments/ranking/features.py) on hand-computed cases, and the
XGBoost re-ranker's contract: it learns a planted signal, ignores position at serving time,
and survives a save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from deployments.ranking import features, models
from training import rerank
from training.config import RerankerConfig

NOW = 1_800_000_000.0


def frame() -> features.ProductFrame:
    """Four products: 0 and 1 share collection c1 and vendor, 2 is alone, 3 unknown price."""
    return features.ProductFrame(
        price=np.array([10.0, 20.0, 5.0, np.nan]),
        created=np.array([NOW - 86_400 * 9, np.nan, NOW, NOW]),
        popularity=features.percentile(np.array([3.0, 1.0, 0.0, 2.0])),
        trending=np.zeros(4),
        collections=features.incidence(
            [frozenset({"c1"}), frozenset({"c1", "c2"}), frozenset({"c3"}), frozenset()]
        ),
        tags=features.incidence(
            [frozenset({"a", "b"}), frozenset({"b"}), frozenset(), frozenset({"a"})]
        ),
        vendor=features.codes(["v", "v", "w", ""]),
        product_type=features.codes(["t", "u", "t", "t"]),
    )


def rows(anchor: int, items: list[int], session: dict[int, float]) -> features.Rows:
    n = len(items)
    return features.Rows(
        query=np.zeros(n, dtype=np.int64),
        item=np.array(items, dtype=np.int64),
        base=np.linspace(1.0, 0.5, n),
        sources={"cf": np.array([2.0, 1.0, 0.0][:n])},
        anchor=np.array([anchor]),
        session=sparse.csr_matrix(
            (list(session.values()), ([0] * len(session), list(session))), shape=(1, 4)
        ),
        device=np.array([1.0]),
    )


def column(x: np.ndarray, name: str, sources: tuple[str, ...] = ("cf",)) -> np.ndarray:
    return x[:, features.names(sources).index(name)]


def test_feature_values_match_hand_computation() -> None:
    x = features.matrix(frame(), rows(0, [1, 2, 3], {0: 1.0}), NOW, ("cf",))
    assert column(x, "cf_score").tolist() == [1.0, 0.5, 0.0]
    assert column(x, "base_score")[0] == 1.0
    assert column(x, "base_rank").tolist() == pytest.approx(np.log2([2, 3, 4]).tolist())
    assert column(x, "price_ratio")[:2].tolist() == pytest.approx([np.log(2.0), np.log(0.5)])
    assert np.isnan(column(x, "price_ratio")[2])  # unknown price
    assert column(x, "shared_collections").tolist() == [1.0, 0.0, 0.0]
    assert column(x, "same_vendor")[:2].tolist() == [1.0, 0.0]
    assert column(x, "same_vendor")[2] == 0.0  # a product without a vendor shares none
    assert column(x, "same_type").tolist() == [0.0, 1.0, 1.0]
    assert column(x, "tag_overlap").tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert column(x, "session_affinity")[0] == pytest.approx(1 / np.sqrt(2))
    age = column(x, "age_days")
    assert np.isnan(age[0]) and age[1:].tolist() == [0.0, 0.0]  # unknown creation: missing
    assert np.isnan(column(x, "position")).all()  # no position unless learnt from impressions
    assert column(x, "mobile").tolist() == [1.0, 1.0, 1.0]


def test_without_an_anchor_anchor_features_are_missing() -> None:
    x = features.matrix(frame(), rows(-1, [1, 2], {}), NOW, ("cf",))
    for name in ("price_ratio", "shared_collections", "same_vendor", "tag_overlap"):
        assert np.isnan(column(x, name)).all(), name
    assert np.isnan(column(x, "session_affinity")).all()
    assert column(x, "history_length").tolist() == [0.0, 0.0]


def test_percentile_keeps_zero_and_ranks_ties_together() -> None:
    assert features.percentile(np.array([0.0, 5.0, 5.0, 1.0])).tolist() == [0.0, 1.0, 1.0, 0.5]


def config() -> RerankerConfig:
    return RerankerConfig(
        candidates=20,
        params={"objective": "rank:ndcg", "eta": 0.3, "max_depth": 3, "nthread": 1, "seed": 1},
        rounds=60,
        early_stopping_rounds=10,
        negatives=10,
        min_queries=1,
        max_impressions=0,
        max_queries=100_000,
    )


def planted(n_queries: int, seed: int) -> rerank.Dataset:
    """Relevance is decided by feature 3 alone; the base order (feature 0) is noise."""
    rng = np.random.default_rng(seed)
    n_features = len(features.names(("cf",)))
    qid = np.repeat(np.arange(n_queries), 10)
    x = rng.random((len(qid), n_features)).astype(np.float32)
    y = (x[:, 3] > 0.8).astype(np.float32)
    return rerank.Dataset(x, y, qid)


def test_the_reranker_learns_a_planted_signal_and_round_trips(tmp_path: Path) -> None:
    model = rerank.Reranker(config(), ("cf",))
    model.fit(planted(200, 1), planted(50, 2))
    test = planted(50, 3)
    scores = model.score(test.x)
    relevant, irrelevant = scores[test.y > 0], scores[test.y == 0]
    assert relevant.mean() > irrelevant.mean() + 0.5
    model.save(tmp_path / "r")
    loaded = rerank.Reranker.load(tmp_path / "r")
    assert np.array_equal(loaded.score(test.x), scores)
    assert loaded.sources == ("cf",)


def test_serving_loads_the_reranker_single_threaded_with_the_same_scores(tmp_path: Path) -> None:
    model = rerank.Reranker(config(), ("cf",))
    model.fit(planted(100, 1), planted(30, 2))
    model.save(tmp_path / "r")
    test = planted(20, 3)

    def threads(m: rerank.Reranker) -> str:
        assert m.booster is not None
        return str(json.loads(m.booster.save_config())["learner"]["generic_param"]["nthread"])

    everywhere = rerank.Reranker.load(tmp_path / "r")
    served = models._load("reranker", tmp_path / "r")
    assert isinstance(served, rerank.Reranker)
    assert threads(everywhere) == "0" and threads(served) == str(models.SERVING_THREADS) == "1"
    assert np.array_equal(served.score(test.x), everywhere.score(test.x))


def test_a_reranker_fitted_on_other_features_refuses_to_load(tmp_path: Path) -> None:
    model = rerank.Reranker(config(), ("cf",))
    model.fit(planted(50, 1), planted(20, 2))
    model.save(tmp_path / "r")
    meta = (tmp_path / "r" / rerank.META_FILE).read_text()
    (tmp_path / "r" / rerank.META_FILE).write_text(meta.replace('"base_score"', '"renamed"'))
    with pytest.raises(ValueError, match="fitted on features"):
        rerank.Reranker.load(tmp_path / "r")


def test_candidates_follow_the_blend_and_exclude_known_items() -> None:
    cf = sparse.csr_matrix(np.array([[0, 3, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    co = sparse.csr_matrix(np.array([[0, 0, 2, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    session = sparse.csr_matrix(np.array([[1.0, 0, 0, 0]]))
    queries = rerank.Queries(session, np.array([0]), np.array([np.nan]), session)
    out = rerank.candidates({"cf": cf, "co": co}, {"cf": 1.0, "co": 1.0}, queries, depth=10)
    # blend: item1 = 1.0, item2 = 1/3 + 1.0, item3 = 0.5; item 0 is the session's own
    assert out.item.tolist() == [2, 1, 3]
    assert out.base.tolist() == pytest.approx([4 / 3, 1.0, 0.5])
    assert out.sources["cf"].tolist() == [1.0, 3.0, 0.0]
    labels = rerank.holdout_labels(out, sparse.csr_matrix(np.array([[0, 0, 0, 1.0]])))
    assert labels.tolist() == [0.0, 0.0, 1.0]


def test_subsample_keeps_positives_and_a_few_negatives_of_queries_with_a_positive() -> None:
    query = np.repeat(np.arange(4), 5)
    labels = np.zeros(20, dtype=np.float32)
    labels[[1, 12, 13]] = 1.0
    rows = features.Rows(
        query=query,
        item=np.arange(20),
        base=np.ones(20),
        sources={},
        anchor=np.zeros(4, dtype=np.int64),
        session=sparse.csr_matrix((4, 20)),
        device=np.zeros(4),
    )
    kept = rerank.subsample(rows, labels, negatives=2, seed=0)
    assert set(query[kept].tolist()) == {0, 2}  # queries 1 and 3 have nothing to learn from
    assert {1, 12, 13} <= set(kept.tolist())
    for q in (0, 2):
        assert ((query[kept] == q) & (labels[kept] == 0)).sum() == 2
    assert kept.tolist() == sorted(kept.tolist())
