"""The learning-to-rank re-ranker: XGBoost (rank:ndcg) over the candidates of the neighbour
tables, grouped per request.

Training rows come from two places:
- impressions (nova:recommendation_viewed) joined to what followed by ranking_id: a click
  is 1, an add-to-cart 2, a purchase 3, a product shown and ignored 0. The position it was
  shown at is a feature during training only (deployments/ranking/features.py says why);
- where a shop has too few impressions, held-out history: a shopper's earlier items are the
  query's session, the candidates are what the tables suggest for it, and the items the
  shopper went on to touch (the validation split) are the positives.

Candidates and their base order are built exactly as serving builds its first step: the
neighbour tables' scores summed over the session's weighted items, each source scaled to its
best and blended with the serving weights.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from scipy import sparse

from deployments.ranking import features
from deployments.ranking.cooccurrence import NeighbourTable
from training.config import RayConfig, RerankerConfig

MODEL_FILE = "model.json"
META_FILE = "reranker.json"
LABELS = {"click": 1.0, "cart": 2.0, "purchase": 3.0}


def table_matrix(table: NeighbourTable, items: np.ndarray) -> sparse.csr_matrix:
    """A neighbour table as an items x items matrix over `items` (row: suggesting product)."""
    position = {str(p): i for i, p in enumerate(items)}
    local = np.array([position.get(str(p), -1) for p in table.product_ids], dtype=np.int64)
    counts = np.diff(table.indptr)
    rows = np.repeat(local, counts)
    cols = local[table.neighbours]
    keep = (rows >= 0) & (cols >= 0)
    return sparse.csr_matrix(
        (table.scores[keep].astype(np.float64), (rows[keep], cols[keep])),
        shape=(len(items), len(items)),
    )


@dataclass(frozen=True)
class Queries:
    """Sessions to rank for: weighted recent items per query, an anchor, a device."""

    session: sparse.csr_matrix  # queries x items
    anchor: np.ndarray  # int64 per query, -1 none
    device: np.ndarray  # float64 per query, NaN unknown
    exclude: sparse.csr_matrix  # queries x items: never candidates (already had)


def candidates(
    tables: Mapping[str, sparse.csr_matrix],
    blend: Mapping[str, float],
    queries: Queries,
    depth: int,
    chunk: int = 2_000,
) -> features.Rows:
    """Each query's `depth` best candidates by the blended score of the tables, as rows.
    Queries go in chunks: a chunk's score matrices (queries x items, every neighbour of every
    session item) are the big intermediate, and only its candidates are kept."""
    n_queries = queries.session.shape[0]
    q_parts, i_parts, b_parts = [], [], []
    source_parts: dict[str, list[np.ndarray]] = {name: [] for name in tables}
    for lo in range(0, n_queries, chunk):
        hi = min(lo + chunk, n_queries)
        session, exclude = queries.session[lo:hi], queries.exclude[lo:hi]
        scores = {name: (session @ m).tocsr() for name, m in tables.items()}
        base = sparse.csr_matrix(session.shape)
        for name, weight in blend.items():
            if name in scores and weight > 0:
                base = base + weight * _scale_rows(scores[name])
        base = base.tocsr()
        base = base - base.multiply(exclude > 0)
        base.data = np.maximum(base.data, 0)
        base.eliminate_zeros()
        for q in range(hi - lo):
            a, b = base.indptr[q], base.indptr[q + 1]
            cols, vals = base.indices[a:b], base.data[a:b]
            if len(cols) > depth:
                top = np.argpartition(-vals, depth - 1)[:depth]
                cols, vals = cols[top], vals[top]
            order = np.lexsort((cols, -vals))
            q_parts.append(np.full(len(order), q, dtype=np.int64))
            i_parts.append(cols[order].astype(np.int64))
            b_parts.append(vals[order])
        local_q = np.concatenate(q_parts[-(hi - lo) :]) if hi > lo else np.zeros(0, np.int64)
        local_i = np.concatenate(i_parts[-(hi - lo) :]) if hi > lo else np.zeros(0, np.int64)
        for name, m in scores.items():
            source_parts[name].append(lookup(m, local_q, local_i))
        for k in range(len(q_parts) - (hi - lo), len(q_parts)):
            q_parts[k] = q_parts[k] + lo
    query = np.concatenate(q_parts) if q_parts else np.zeros(0, np.int64)
    item = np.concatenate(i_parts) if i_parts else np.zeros(0, np.int64)
    return features.Rows(
        query=query,
        item=item,
        base=np.concatenate(b_parts) if b_parts else np.zeros(0),
        sources={
            name: np.concatenate(parts) if parts else np.zeros(0)
            for name, parts in source_parts.items()
        },
        anchor=queries.anchor,
        session=queries.session,
        device=queries.device,
    )


def _scale_rows(m: sparse.csr_matrix) -> sparse.csr_matrix:
    best = np.zeros(m.shape[0])
    if m.nnz:
        np.maximum.at(best, np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.data)
    inverse = np.divide(1.0, best, out=np.zeros_like(best), where=best > 0)
    return sparse.diags(inverse) @ m


def lookup(m: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.asarray(m[rows, cols]).ravel().astype(np.float64) if len(rows) else np.zeros(0)


def holdout_labels(rows: features.Rows, relevant: sparse.csr_matrix) -> np.ndarray:
    """1 where the candidate is one of the query's held-out items."""
    return (lookup(relevant.tocsr(), rows.query, rows.item) > 0).astype(np.float32)


def subsample(rows: features.Rows, labels: np.ndarray, negatives: int, seed: int) -> np.ndarray:
    """Row indices to train on: queries with at least one positive, all their positives and
    up to `negatives` random negatives each. Queries without positives teach nothing."""
    rng = np.random.default_rng(seed)
    with_positive = np.isin(rows.query, np.unique(rows.query[labels > 0]))
    # Rank each query's negatives in a random order; keep the first `negatives`.
    negative = with_positive & (labels == 0)
    idx = np.flatnonzero(negative)
    order = idx[np.lexsort((rng.random(len(idx)), rows.query[idx]))]
    q = rows.query[order]
    starts = np.r_[0, np.flatnonzero(np.diff(q)) + 1] if len(q) else np.zeros(0, np.int64)
    rank = np.arange(len(q)) - np.repeat(starts, np.diff(np.r_[starts, len(q)]))
    keep = np.zeros(len(labels), dtype=bool)
    keep[order[rank < negatives]] = True
    keep |= with_positive & (labels > 0)
    return np.flatnonzero(keep)


@dataclass
class Dataset:
    x: np.ndarray  # float32 rows x features
    y: np.ndarray  # float32 relevance
    qid: np.ndarray  # int64, non-decreasing

    def take(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.x[idx], self.y[idx], self.qid[idx])

    def split_queries(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """By query, so no request is both learnt from and validated on."""
        queries = np.unique(self.qid)
        rng = np.random.default_rng(seed)
        held = set(rng.choice(queries, max(1, int(len(queries) * fraction)), replace=False))
        mask = np.array([q in held for q in self.qid])
        return self.take(np.flatnonzero(~mask)), self.take(np.flatnonzero(mask))


class Reranker:
    kind = "reranker"

    def __init__(self, config: RerankerConfig, sources: Sequence[str] = features.SOURCES) -> None:
        self.config = config
        self.sources = tuple(sources)
        self.booster: xgb.Booster | None = None
        self.best_iteration: int | None = None

    @property
    def feature_names(self) -> list[str]:
        return features.names(self.sources)

    def params(self) -> dict[str, Any]:
        return {"objective": "rank:ndcg", "tree_method": "hist", **self.config.params}

    def fit(self, train: Dataset, valid: Dataset) -> None:
        self.booster = _train(self.params(), self.config, train, valid)
        self.best_iteration = _best_iteration(self.booster)

    def fit_distributed(self, train: Dataset, valid: Dataset, ray_config: RayConfig) -> float:
        """Same fit across Ray Train workers (XGBoost's collective); returns the seconds the
        Ray Train run took."""
        booster, seconds = fit_on_ray(self.params(), self.config, train, valid, ray_config)
        self.booster = booster
        self.best_iteration = _best_iteration(booster)
        return seconds

    def score(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("the re-ranker is not fitted")
        limit = (0, self.best_iteration + 1) if self.best_iteration is not None else (0, 0)
        return np.asarray(self.booster.inplace_predict(x, iteration_range=limit))

    def save(self, directory: Path) -> None:
        if self.booster is None:
            raise RuntimeError("the re-ranker is not fitted")
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / MODEL_FILE)
        meta = {
            "config": self.config.model_dump(mode="json"),
            "sources": list(self.sources),
            "features": self.feature_names,
            "best_iteration": self.best_iteration,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, threads: int | None = None) -> Reranker:
        """`threads`: XGBoost's prediction threads (default: every core). Serving passes 1."""
        meta = json.loads((directory / META_FILE).read_text())
        model = cls(RerankerConfig.model_validate(meta["config"]), meta["sources"])
        if meta["features"] != model.feature_names:
            raise ValueError(
                f"re-ranker in {directory} was fitted on features {meta['features']}, "
                f"this code computes {model.feature_names}"
            )
        booster = xgb.Booster()
        booster.load_model(directory / MODEL_FILE)
        if threads is not None:
            booster.set_param({"nthread": threads})
        model.booster = booster
        model.best_iteration = meta["best_iteration"]
        return model


def _dmatrix(data: Dataset) -> xgb.DMatrix:
    return xgb.DMatrix(data.x, label=data.y, qid=data.qid, missing=np.nan)


def _train(
    params: dict[str, Any], config: RerankerConfig, train: Dataset, valid: Dataset
) -> xgb.Booster:
    dtrain, dvalid = _dmatrix(train), _dmatrix(valid)
    return xgb.train(
        params,
        dtrain,
        num_boost_round=config.rounds,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )


def _best_iteration(booster: xgb.Booster) -> int | None:
    found = booster.attributes().get("best_iteration")
    return int(found) if found is not None else None


def fit_on_ray(
    params: dict[str, Any],
    config: RerankerConfig,
    train: Dataset,
    valid: Dataset,
    ray_config: RayConfig,
) -> tuple[xgb.Booster, float]:
    """XGBoostTrainer over query shards: worker r gets the queries with qid % n == r, so a
    request's rows stay on one worker (ranking objectives need the whole group)."""
    import ray
    from ray.train import Checkpoint, RunConfig, ScalingConfig
    from ray.train.xgboost import XGBoostTrainer

    from training.distributed import controller_polling, ensure_ray, run_storage

    ensure_ray()
    world = max(ray_config.num_workers, 1)

    def shard(data: Dataset) -> list[Any]:
        return [ray.put(data.take(np.flatnonzero(data.qid % world == r))) for r in range(world)]

    loop_config = {"train": shard(train), "valid": shard(valid)}
    with run_storage(ray_config) as storage, controller_polling(ray_config):
        trainer = XGBoostTrainer(
            functools.partial(_xgb_loop, params, config),
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=ray_config.num_workers,
                resources_per_worker={"CPU": ray_config.cpus_per_worker},
            ),
            run_config=RunConfig(name=f"reranker-{time.time_ns()}", storage_path=storage),
        )
        started = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - started
        if result.checkpoint is None:
            raise RuntimeError("the re-ranker's Ray Train run reported no model")
        booster = xgb.Booster()
        with result.checkpoint.as_directory() as directory:
            booster.load_model(Path(directory) / MODEL_FILE)
    _ = Checkpoint  # imported for the loop's module namespace
    return booster, seconds


def _xgb_loop(params: dict[str, Any], config: RerankerConfig, loop: dict[str, Any]) -> None:
    import ray
    import ray.train
    from ray.train import Checkpoint

    rank = ray.train.get_context().get_world_rank()
    train, valid = ray.get(loop["train"][rank]), ray.get(loop["valid"][rank])
    booster = _train(params, config, train, valid)
    checkpoint = None
    if rank == 0:  # the others' boosters are the same model
        directory = tempfile.mkdtemp(prefix="nova-reranker-")
        booster.save_model(Path(directory) / MODEL_FILE)
        checkpoint = Checkpoint.from_directory(directory)
    ray.train.report(
        {"best_iteration": _best_iteration(booster) or 0},
        checkpoint=checkpoint,
        delete_local_checkpoint_after_upload=True,
    )
