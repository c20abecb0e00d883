"""Nova's pipelines in the quality evaluation (python -m bench.quality).

Each is a bench.evaluation.Candidate, tuned on validation and tested exactly like the peers:

- Nova's models alone (training/models: item-kNN, EASE, ALS), scoring a user's training
  history the way a shop's fit validates them;
- Nova's full pipeline: those models' candidates re-ranked by the XGBoost learning-to-rank
  re-ranker (training/rerank.py) on the features serving computes (deployments/ranking/
  features.py). As in a shop's fit, the re-ranker learns from held-out history: a slice of
  each user's *training* items is hidden, the models fitted on the rest propose candidates,
  and the hidden items are the positives. The validation and test splits are never learnt
  from. The models are then refitted on the whole training split to rank.

MovieLens's items file is the catalog a shop would have (bench/movielens.py load_catalog):
genres stand for collections, so "session_affinity" (the candidate's genres against the
user's history) is computed as for a shop, and the release year for the creation date, so
"age_days" counts from the newest release. Price, vendor, type and tags stay missing. The
genres and the titles' words are also the catalog groups Nova ALS may learn from (its grid
tries catalog_weight 0 and 0.3), as a shop's fit takes collections, tags, vendors, types and
title words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.evaluation import Candidate, Params
from bench.movielens import Catalog
from deployments.ranking import features
from training import catalog_groups, rerank
from training.config import RerankerConfig
from training.interactions import Interactions
from training.models import build
from training.models.base import Model

FOLDS = 5  # the re-ranker learns from every training item once hidden
RERANKER = RerankerConfig(
    candidates=100,
    params={
        "objective": "rank:ndcg",
        "eval_metric": "ndcg@10",
        "lambdarank_pair_method": "topk",
        "lambdarank_num_pair_per_sample": 10,
        "eta": 0.05,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
        "nthread": 2,
    },
    rounds=600,
    early_stopping_rounds=50,
    negatives=100,
    min_queries=1,
    max_impressions=0,
    max_queries=100_000,
)


def _interactions(matrix: sp.csr_matrix, groups: sp.csr_matrix | None = None) -> Interactions:
    """Column j stays item j: labels are the indices themselves."""
    return Interactions(
        matrix.astype(np.float32).tocsr(),
        np.arange(matrix.shape[0]).astype(str),
        np.arange(matrix.shape[1]).astype(str),
        groups,
    )


def catalog_groups_of(catalog: Catalog) -> sp.csr_matrix:
    """The catalog groups a shop's fit would take (training/catalog_groups.py from_view), over
    item indices: the genres as collections, and the title words."""
    items = np.arange(len(catalog.genres)).astype(str)
    labels = (
        catalog_groups.labels(collections=genres, title=title)
        for genres, title in zip(catalog.genres, catalog.titles, strict=True)
    )
    return catalog_groups.from_labels(items, zip(items.tolist(), labels, strict=True))


class NovaModel:
    """One of Nova's models scoring each user's training history."""

    def __init__(
        self, kind: str, config: Mapping[str, Any], groups: sp.csr_matrix | None = None
    ) -> None:
        self._model = build(kind, config)
        self._groups = groups
        self._train: sp.csr_matrix | None = None

    def fit(self, train: sp.csr_matrix) -> None:
        self._train = train
        self._model.fit(_interactions(train, self._groups))

    def score(self, users: np.ndarray) -> np.ndarray:
        assert self._train is not None
        return self._model.score(self._train[users])


def _fit_all(configs: Mapping[str, Mapping[str, Any]], train: sp.csr_matrix) -> dict[str, Model]:
    data = _interactions(train)
    models = {}
    for kind, config in configs.items():
        model = build(kind, config)
        model.fit(data)
        models[kind] = model
    return models


def _folds(train: sp.csr_matrix, k: int, seed: int) -> list[tuple[sp.csr_matrix, sp.csr_matrix]]:
    """K (inner training, hidden) pairs over the training split: each of a user's training
    items is hidden in exactly one fold."""
    rng = np.random.default_rng(seed + 1000)
    fold = np.empty(train.nnz, dtype=np.int64)
    for user in range(train.shape[0]):
        lo, hi = train.indptr[user], train.indptr[user + 1]
        fold[lo:hi] = rng.permutation(np.arange(hi - lo) % k)
    coo = train.tocoo()
    out = []
    for f in range(k):
        keep = fold != f
        out.append(
            tuple(
                sp.csr_matrix((coo.data[m], (coo.row[m], coo.col[m])), shape=train.shape)
                for m in (keep, ~keep)
            )
        )
    return out  # type: ignore[return-value]


class RerankedPipeline:
    """Candidates of several of Nova's models, blended, then (unless `rerank` is off: the
    same candidates in their blended order) re-ranked by XGBoost."""

    def __init__(
        self,
        configs: Mapping[str, Mapping[str, Any]],
        blend: Mapping[str, float],
        seed: int,
        *,
        rerank_candidates: bool = True,
        catalog: Catalog | None = None,
    ) -> None:
        self._configs, self._blend, self._seed = configs, blend, seed
        self._catalog = catalog
        # "Now" for the items' age: the newest release (MovieLens ends in 1998).
        self._now = float(np.nanmax(catalog.released)) if catalog is not None else 0.0
        self._sources = tuple(configs)
        config = RERANKER.model_copy(update={"params": {**RERANKER.params, "seed": seed}})
        self._reranker = rerank.Reranker(config, self._sources) if rerank_candidates else None
        self._models: dict[str, Model] = {}
        self._train: sp.csr_matrix | None = None
        self._frame: features.ProductFrame | None = None

    def fit(self, train: sp.csr_matrix) -> None:
        if self._reranker is not None:
            self._fit_reranker(train)
        self._models = _fit_all(self._configs, train)
        self._train = train
        self._frame = self._product_frame(train)

    def _fit_reranker(self, train: sp.csr_matrix) -> None:
        """Learn from FOLDS folds of the training split: models fitted on the rest propose
        candidates for each user, the fold's hidden items are the positives. One query per
        user and fold; 15% of the queries decide when to stop adding trees."""
        assert self._reranker is not None
        xs, ys, qs = [], [], []
        offset = 0
        for inner, hidden in _folds(train, FOLDS, self._seed):
            models = _fit_all(self._configs, inner)
            users = np.flatnonzero(np.diff(hidden.indptr) > 0)
            frame = self._product_frame(inner)
            rows, x, _ = self._rows(models, inner, users, frame)
            xs.append(x)
            ys.append(rerank.holdout_labels(rows, hidden[users]))
            qs.append(rows.query + offset)
            offset += len(users)
        x, y, q = np.vstack(xs), np.concatenate(ys), np.concatenate(qs)
        held = np.random.default_rng(self._seed).random(offset) < 0.15
        fit, stop = np.flatnonzero(~held[q]), np.flatnonzero(held[q])
        self._reranker.fit(
            rerank.Dataset(x[fit], y[fit], q[fit]), rerank.Dataset(x[stop], y[stop], q[stop])
        )

    def _product_frame(self, train: sp.csr_matrix) -> features.ProductFrame:
        """Popularity from `train`; genres and release dates from the catalog, if any."""
        bare = features.ProductFrame.bare(np.asarray(train.sum(axis=0)).ravel())
        if self._catalog is None:
            return bare
        return replace(
            bare,
            collections=features.incidence(list(self._catalog.genres)),
            created=self._catalog.released,
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        assert self._train is not None and self._frame is not None
        rows, x, base = self._rows(self._models, self._train, users, self._frame)
        out = base / max(float(base.max()), 1e-9)  # every non-candidate below every candidate
        if self._reranker is None:
            out[rows.query, rows.item] += 2.0
            return out
        reranked = self._reranker.score(x)
        out[rows.query, rows.item] = 2.0 + reranked - reranked.min()
        return out

    def _rows(
        self,
        models: Mapping[str, Model],
        history: sp.csr_matrix,
        users: np.ndarray,
        frame: features.ProductFrame,
    ) -> tuple[features.Rows, np.ndarray, np.ndarray]:
        """The users' candidates (the blend's best, known items excluded) as feature rows, and
        the blended scores of every item."""
        known = history[users]
        scores = {kind: np.maximum(m.score(known), 0.0) for kind, m in models.items()}
        base = np.zeros(known.shape)
        for kind, weight in self._blend.items():
            best = scores[kind].max(axis=1, keepdims=True)
            base += weight * np.divide(
                scores[kind], best, out=np.zeros_like(scores[kind]), where=best > 0
            )
        base[known.nonzero()] = 0.0
        depth = min(RERANKER.candidates, base.shape[1])
        top = np.argpartition(-base, depth - 1, axis=1)[:, :depth]
        query = np.repeat(np.arange(len(users)), depth)
        item = top.ravel()
        rows = features.Rows(
            query=query,
            item=item,
            base=base[query, item],
            sources={kind: s[query, item] for kind, s in scores.items()},
            anchor=np.full(len(users), -1),
            session=known,
            device=np.full(len(users), np.nan),
        )
        return rows, features.matrix(frame, rows, self._now, self._sources), base


def _model(kind: str, groups: sp.csr_matrix | None = None) -> Any:
    def factory(params: Params, seed: int) -> NovaModel:
        config = dict(params)
        if kind == "als":
            config["seed"] = seed
        return NovaModel(kind, config, groups)

    return factory


# The candidate models of the pipelines: Nova's models at their ML-100K validation choices.
PIPELINE_MODELS = {
    "ease": {"l2": 300.0},
    "als": {"factors": 128, "regularization": 30.0, "alpha": 2.0, "activity_exponent": 0.5},
    "item_knn": {
        "neighbours": 100,
        "shrink": 0.0,
        "alpha": 0.8,
        "row_weighting": "inverse",
        "pop_exponent": 0.2,
    },
}


def _pipeline(rerank_candidates: bool, catalog: Catalog | None = None) -> Any:
    def factory(params: Params, seed: int) -> RerankedPipeline:
        configs = {k: dict(v) for k, v in PIPELINE_MODELS.items()}
        configs["als"]["seed"] = seed
        blend = {"ease": 1.0, "als": float(params["als_weight"]), "item_knn": 0.25}
        return RerankedPipeline(
            configs, blend, seed, rerank_candidates=rerank_candidates, catalog=catalog
        )

    return factory


KNN_GRID = {
    "neighbours": (100, 200),
    "shrink": (0.0, 10.0),
    "alpha": (0.5, 0.8),
    "row_weighting": ("inverse",),
    "pop_exponent": (0.0, 0.2),
}


def nova_candidates(catalog: Catalog | None = None) -> list[Candidate]:
    """Nova's pipelines in the comparison; with a catalog, the re-ranker reads it and ALS
    may learn from its genres and title words (catalog_weight > 0)."""
    groups = catalog_groups_of(catalog) if catalog is not None else None
    return [
        Candidate("Nova item-kNN", _model("item_knn"), KNN_GRID),
        Candidate("Nova EASE", _model("ease"), {"l2": (100.0, 200.0, 300.0, 500.0, 1000.0)}),
        Candidate(
            "Nova ALS",
            _model("als", groups),
            {
                "factors": (64, 128),
                "regularization": (10.0, 30.0),
                "alpha": (1.0, 2.0),
                "activity_exponent": (0.0, 0.5),
                "catalog_weight": (0.0, 0.3) if groups is not None else (0.0,),
            },
        ),
        Candidate(
            "Nova blend (EASE + ALS + item-kNN)", _pipeline(False), {"als_weight": (1.0, 1.5, 2.5)}
        ),
        Candidate(
            "Nova blend re-ranked (XGBoost LTR)",
            _pipeline(True, catalog),
            {"als_weight": (1.0, 1.5, 2.5)},
        ),
    ]
