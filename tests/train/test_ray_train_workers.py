"""The data-parallel fits on Ray Train give the same result with one worker and with two
(and in local mode), within float tolerance: sharding changes where sums are taken, not what
is learnt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import ray

from deployments.ranking import features
from training import rerank
from training.config import RayConfig, RerankerConfig
from training.distributed import GramTask, gram_statistics
from training.interactions import Interactions
from training.models import build

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def ray_config(workers: int, tmp: str) -> RayConfig:
    return RayConfig(num_workers=workers, cpus_per_worker=0.5, storage_path=tmp)


def shop_matrix() -> Interactions:
    rng = np.random.default_rng(4)
    users = rng.integers(0, 400, 6000).astype(str)
    items = (rng.zipf(1.6, 6000) % 150).astype(str)
    return Interactions.from_triples(users, items, rng.random(6000) + 0.5)


def test_gram_models_fit_the_same_on_one_and_two_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = shop_matrix()
    kinds = {"item_knn": {"row_weighting": "log", "neighbours": 30}, "ease": {"l2": 50.0}}
    scores = {}
    for workers in (0, 1, 2):
        tmp = str(tmp_path_factory.mktemp(f"w{workers}"))
        models = {kind: build(kind, cfg) for kind, cfg in kinds.items()}
        run = gram_statistics(
            [GramTask(kind, m.statistics, data.matrix) for kind, m in models.items()],  # type: ignore[attr-defined]
            ray_config(workers, tmp),
            name="equal",
        )
        assert run.grams["ease"].rows == data.n_users
        # Each rank wrote its statistics straight into the run's directory in storage.
        written = sorted(p.name for p in Path(tmp).glob("equal-*/statistics/ease.rank*.data.arrow"))
        assert written == [f"ease.rank{r}.data.arrow" for r in range(max(workers, 1))]
        for kind, model in models.items():
            model.fit_statistics(run.grams[kind], data.items)  # type: ignore[attr-defined]
            scores[(kind, workers)] = model.score(data.matrix[:50])
    for kind in kinds:
        assert np.abs(scores[(kind, 0)]).max() > 0
        for workers in (1, 2):
            np.testing.assert_allclose(
                scores[(kind, workers)], scores[(kind, 0)], rtol=1e-5, atol=1e-7
            )


def ranking_data(n_queries: int, seed: int) -> rerank.Dataset:
    """Features on a coarse grid (quantile sketches are then exact on any sharding), relevance
    from two of them."""
    rng = np.random.default_rng(seed)
    width = len(features.names(("cf",)))
    qid = np.repeat(np.arange(n_queries), 12)
    x = (rng.integers(0, 16, (len(qid), width)) / 16).astype(np.float32)
    y = ((x[:, 2] > 0.6) | (x[:, 5] > 0.9)).astype(np.float32)
    return rerank.Dataset(x, y, qid)


def test_the_reranker_fits_the_same_on_one_and_two_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = RerankerConfig(
        candidates=12,
        params={
            "objective": "rank:ndcg",
            "eta": 0.3,
            "max_depth": 3,
            "nthread": 1,
            "seed": 0,
            "lambdarank_pair_method": "topk",
            "lambdarank_num_pair_per_sample": 4,
        },
        rounds=20,
        early_stopping_rounds=20,
        negatives=12,
        min_queries=1,
        max_impressions=0,
        max_queries=100_000,
    )
    train, valid, test = ranking_data(160, 1), ranking_data(40, 2), ranking_data(40, 3)
    local = rerank.Reranker(config, ("cf",))
    local.fit(train, valid)
    expected = local.score(test.x)
    for workers in (1, 2):
        model = rerank.Reranker(config, ("cf",))
        seconds = model.fit_distributed(
            train, valid, ray_config(workers, str(tmp_path_factory.mktemp(f"x{workers}")))
        )
        assert seconds > 0
        np.testing.assert_allclose(model.score(test.x), expected, rtol=1e-4, atol=1e-5)
