"""One shop's fit, from its data to the models worth publishing. Pure computation: the job
(training/jobs.py) reads the data, calls fit(), and publishes what comes out.

Three registry kinds serve a shop:
- "cf": item-to-item collaborative filtering for related and personalised answers. The
  algorithm (item-kNN, EASE, ALS: the `[models.*]` tables of the config) is chosen per shop by
  the validation metric of exactly what serving reads, the exported neighbour table;
- "co_purchase": association between products bought together, validated by hiding one
  product of each held-out order and asking for it back;
- "reranker": XGBoost learning-to-rank over the first candidates of those tables.
Each comes with its validation metrics and the popularity baseline it must beat (its floor).

The data-parallel part, the Gram statistics of every Gram model on the training split and on
the whole window, is one Ray Train run; the models are finished in the driver. Validated
models are refitted on the whole window before they are published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from deployments.ranking import features
from deployments.ranking.engine import PERSONAL_BLEND
from deployments.ranking.strategies import RECENCY_DECAY
from deployments.ranking.view import ShopView
from training import catalog_groups, evaluation, rerank
from training import data as data_mod
from training.config import TrainingConfig
from training.distributed import GramTask, gram_statistics
from training.interactions import Interactions
from training.models import build
from training.models.als import ALS
from training.models.base import Gram, GramModel, Model, ModelFitError
from training.registry import Floor

log = logging.getLogger(__name__)

CF_KINDS = ("item_knn", "ease", "als")
NEIGHBOURS_FILE = "neighbours.npz"
MODEL_DIR = "model"
SESSION_ITEMS = 20  # recent items of a session query: serving's session state keeps as many
BASKET_SOURCES = {"co_view": "view", "co_cart": "cart"}  # day-basket tables, as the refresher's
VALIDATION_ORDERS = 10  # one order in ten validates co-purchase
TRENDING_DAYS = 7.0


@dataclass
class Fitted:
    """A model ready to publish: its files, what it is, how it validated, its floor."""

    kind: str  # the registry kind: cf, co_purchase, reranker
    directory: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    floor: Floor


@dataclass
class FitResult:
    fitted: list[Fitted] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why it was not fitted
    seconds: dict[str, float] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)  # Ray Train workers per step, 0 = local


@dataclass(frozen=True)
class Holdout:
    """Validation queries: what each already had (known, over the training vocabulary) and what
    it went on to have (relevant), with the true count of relevant items (a product first seen
    in validation cannot be found, but still counts as missed)."""

    known: sparse.csr_matrix
    relevant: sparse.csr_matrix
    n_relevant: np.ndarray
    rows: np.ndarray  # the queries' rows in the training matrix (users), when they are users

    @property
    def size(self) -> int:
        return int(self.known.shape[0])


@dataclass
class _Shop:
    """Everything fit() derives from the data once."""

    split: data_mod.Split
    train: Interactions
    full: Interactions
    holdout: Holdout
    orders: Interactions
    order_train: Interactions | None
    order_holdout: Holdout | None


def fit(
    shop: data_mod.ShopData,
    view: ShopView | None,
    config: TrainingConfig,
    workdir: Path,
    now_ts: float,
) -> FitResult:
    result = FitResult(window=shop.describe())
    s = _prepare(shop, config, now_ts, view)
    metric = f"{config.validation.metric}@{config.validation.k}"
    cf_problem = _too_little(s.train, s.holdout, "shoppers")
    order_problem = (
        "no order with two products in the window"
        if s.order_train is None or s.order_holdout is None
        else _too_little(s.order_train, s.order_holdout, "orders")
    )
    models, tasks = _plan(config, s, cf_problem is None, order_problem is None, result)
    grams: dict[str, Gram] = {}
    if tasks:
        workers = config.ray.for_size(s.full.nnz + s.orders.nnz, config.ray.min_interactions)
        run = gram_statistics(tasks, workers, name=f"gram-{_slug(shop.shop_id)}")
        result.workers["gram"] = workers.num_workers
        grams, result.seconds["ray_train_gram"] = run.grams, run.seconds

    tables: dict[str, sparse.csr_matrix] = {}
    if cf_problem is None:
        started = time.perf_counter()
        cf_table = _fit_cf(config, s, models, grams, workdir / "cf", result, metric)
        if cf_table is not None:
            tables["cf"] = cf_table
        for source in BASKET_SOURCES:
            try:
                tables[source] = _fitted_table(
                    models[source], grams[f"{source}:train"], s.train.items, config
                )
            except ModelFitError as exc:  # e.g. no carts yet: the feature is left out
                result.skipped[f"reranker:{source}"] = str(exc)
        result.seconds["cf"] = time.perf_counter() - started
    else:
        result.skipped["cf"] = cf_problem
    if order_problem is None:
        started = time.perf_counter()
        co_table = _fit_co_purchase(config, s, models, grams, workdir / "co_purchase", result)
        tables["co_purchase"] = co_table
        result.seconds["co_purchase"] = time.perf_counter() - started
    else:
        result.skipped["co_purchase"] = order_problem
    if "cf" in tables:
        started = time.perf_counter()
        _fit_reranker(config, shop, s, tables, view, workdir / "reranker", result, now_ts)
        result.seconds["reranker"] = time.perf_counter() - started
    else:
        result.skipped["reranker"] = "no collaborative-filtering candidates to re-rank"
    return result


# --- data ---------------------------------------------------------------------------------


def _prepare(
    shop: data_mod.ShopData, config: TrainingConfig, now_ts: float, view: ShopView | None
) -> _Shop:
    split = data_mod.temporal_split(shop.events, config.validation)
    # Only ALS learns from the catalog's groups, and only with a catalog_weight.
    catalog = view if config.models.get("als", {}).get("catalog_weight", 0) > 0 else None
    train = _with_groups(data_mod.interactions(split.train, config.data, now_ts), catalog)
    full = _with_groups(data_mod.interactions(shop.events, config.data, now_ts), catalog)
    orders = data_mod.baskets(shop.baskets)
    order_train, order_holdout = _order_split(orders)
    return _Shop(
        split, train, full, _user_holdout(train, split), orders, order_train, order_holdout
    )


def _too_little(train: Interactions, holdout: Holdout, what: str) -> str | None:
    if train.n_items < 2 or train.nnz == 0:
        return f"fewer than two products with interactions from {what}"
    if holdout.size == 0 or not (holdout.n_relevant > 0).any():
        return f"no {what} with enough history to validate on"
    return None


def _positions(vocabulary: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of each label in a sorted vocabulary, -1 when absent."""
    if not len(vocabulary):
        return np.full(len(labels), -1, dtype=np.int64)
    pos = np.searchsorted(vocabulary, labels)
    pos = np.minimum(pos, len(vocabulary) - 1)
    return np.where(vocabulary[pos] == labels, pos, -1).astype(np.int64)


def _with_groups(data: Interactions, view: ShopView | None) -> Interactions:
    """The shoppers' interactions with the catalog's groups over the same products (for ALS's
    catalog_weight); unchanged without a catalog."""
    if view is None:
        return data
    return dataclasses.replace(data, groups=catalog_groups.from_view(view, data.items))


def _user_holdout(train: Interactions, split: data_mod.Split) -> Holdout:
    rows = _positions(train.users, split.users)
    present = np.flatnonzero(rows >= 0)
    q_idx, cols = [], []
    for q, j in enumerate(present):
        found = _positions(train.items, np.asarray(split.held_out[j], dtype=str))
        found = found[found >= 0]
        q_idx.append(np.full(len(found), q))
        cols.append(found)
    n = len(present)
    relevant = sparse.csr_matrix(
        (
            np.ones(sum(len(c) for c in cols), dtype=np.float32),
            (np.concatenate(q_idx) if q_idx else [], np.concatenate(cols) if cols else []),
        ),
        shape=(n, train.n_items),
    )
    return Holdout(
        known=train.matrix[rows[present]],
        relevant=relevant,
        n_relevant=np.array([len(split.held_out[j]) for j in present], dtype=np.int64),
        rows=rows[present],
    )


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _order_split(orders: Interactions) -> tuple[Interactions | None, Holdout | None]:
    """One order in ten (by a hash of its id, so reruns agree) validates: one of its products
    is hidden and must be found from the others."""
    if orders.n_users == 0:
        return None, None
    sizes = np.diff(orders.matrix.indptr)
    chosen = np.array(
        [
            s >= 2 and _hash(str(b)) % VALIDATION_ORDERS == 0
            for b, s in zip(orders.users, sizes, strict=True)
        ]
    )
    if not chosen.any():
        return None, None
    known = orders.matrix[np.flatnonzero(chosen)].tolil()
    relevant = sparse.lil_matrix(known.shape, dtype=np.float32)
    for q, basket in enumerate(orders.users[chosen]):
        cols = known.rows[q]
        hidden = min(cols, key=lambda c: _hash(f"{basket}|{orders.items[c]}"))
        known[q, hidden] = 0
        relevant[q, hidden] = 1
    known_csr = known.tocsr()
    known_csr.eliminate_zeros()
    holdout = Holdout(
        known_csr,
        relevant.tocsr(),
        np.ones(known.shape[0], dtype=np.int64),
        np.flatnonzero(chosen),
    )
    return orders.rows(np.flatnonzero(~chosen)), holdout


def _day_baskets(events: pa.Table, kind: str, items: np.ndarray) -> sparse.csr_matrix:
    """A shopper's day of one kind of event as a basket, over the training vocabulary: the
    same baskets the serving refresher counts for its co_view / co_cart tables."""
    mine = events.filter(pc.equal(events.column("kind"), kind))
    if mine.num_rows == 0:
        return sparse.csr_matrix((0, len(items)), dtype=np.float32)
    day = pa.array(np.floor(mine.column("ts").to_numpy() / data_mod.DAY_S).astype(np.int64))
    users = mine.column("user").combine_chunks()
    if pa.types.is_dictionary(users.type):
        users = users.cast(users.type.value_type)
    keys = pc.binary_join_element_wise(users, day.cast(pa.string()), "|")
    return Interactions.from_triples(
        keys, mine.column("product_id"), item_vocabulary=items
    ).binary()


# --- models -------------------------------------------------------------------------------


def _plan(
    config: TrainingConfig, s: _Shop, cf: bool, orders: bool, result: FitResult
) -> tuple[dict[str, Model], list[GramTask]]:
    """The models to fit and the Gram statistics they need."""
    models: dict[str, Model] = {}
    tasks: list[GramTask] = []
    if cf:
        for kind in (k for k in CF_KINDS if k in config.models):
            model = build(kind, config.models[kind])
            max_items = getattr(model.config, "max_items", None)
            if max_items is not None and s.train.n_items > max_items:
                result.skipped[f"cf:{kind}"] = (
                    f"{s.train.n_items} products, above max_items {max_items}"
                )
                continue
            models[kind] = model
            if isinstance(model, GramModel):
                tasks += [
                    GramTask(f"{kind}:train", model.statistics, s.train.matrix),
                    GramTask(f"{kind}:full", model.statistics, s.full.matrix),
                ]
        for source, event_kind in BASKET_SOURCES.items():
            basket_model = _gram_model(
                "co_purchase", config.models.get(source, {"measure": "cosine"})
            )
            models[source] = basket_model
            baskets = _day_baskets(s.split.train, event_kind, s.train.items)
            tasks.append(GramTask(f"{source}:train", basket_model.statistics, baskets))
    if orders and s.order_train is not None:
        orders_model = _gram_model("co_purchase", config.models.get("co_purchase", {}))
        models["co_purchase"] = orders_model
        tasks += [
            GramTask("co_purchase:train", orders_model.statistics, s.order_train.matrix),
            GramTask("co_purchase:full", orders_model.statistics, s.orders.matrix),
        ]
    return models, tasks


def _gram_model(kind: str, config: dict[str, Any]) -> GramModel:
    model = build(kind, config)
    if not isinstance(model, GramModel):
        raise TypeError(f"{kind} is not fitted from Gram statistics")
    return model


def _finish(
    model: Model,
    grams: dict[str, Gram],
    name: str,
    data: Interactions,
    warm_start: Model | None = None,
) -> Model:
    """A model of the same kind and config, fitted from the statistics `name` (Gram models)
    or on `data` (the others; ALS continues from `warm_start`, the validated fit, when given)."""
    fresh = build(model.kind, model.config.model_dump())
    if isinstance(fresh, GramModel):
        fresh.fit_statistics(grams[name], data.items)
    elif isinstance(fresh, ALS) and isinstance(warm_start, ALS):
        fresh.fit(data, warm_start=warm_start)
    else:
        fresh.fit(data)
    return fresh


def _fitted_table(
    model: Model, gram: Gram, items: np.ndarray, config: TrainingConfig
) -> sparse.csr_matrix:
    fresh = _gram_model(model.kind, model.config.model_dump())
    fresh.fit_statistics(gram, items)
    return rerank.table_matrix(fresh.neighbours(config.serving.neighbours), items)


def _table_scorer(holdout: Holdout, table: sparse.csr_matrix) -> evaluation.Scorer:
    return lambda batch: (holdout.known[batch] @ table).toarray()


def _metrics(ev: evaluation.Evaluation, prefix: str = "") -> dict[str, float]:
    return {prefix + name: value for name, value in ev.means().items()}


def _evaluate(
    holdout: Holdout, scorer: evaluation.Scorer, ks: tuple[int, ...]
) -> evaluation.Evaluation:
    return evaluation.evaluate(
        scorer, holdout.known, holdout.relevant, ks, n_relevant=holdout.n_relevant
    )


def _ks(config: TrainingConfig) -> tuple[int, ...]:
    return tuple(sorted({config.validation.k, 20}))


def _fit_cf(
    config: TrainingConfig,
    s: _Shop,
    models: dict[str, Model],
    grams: dict[str, Gram],
    directory: Path,
    result: FitResult,
    metric: str,
) -> sparse.csr_matrix | None:
    """Validate every configured algorithm on the split, publish the best refitted on the
    whole window; returns the best one's training-split table (for the re-ranker)."""
    ks = _ks(config)
    popularity = build("popularity")
    popularity.fit(s.train)
    baseline = _evaluate(s.holdout, _model_scorer(popularity, s.holdout), ks)
    scored: list[tuple[float, str, sparse.csr_matrix, dict[str, float]]] = []
    fitted: dict[str, Model] = {}
    for kind in (k for k in CF_KINDS if k in models):
        try:
            model = _finish(models[kind], grams, f"{kind}:train", s.train)
        except ModelFitError as exc:
            result.skipped[f"cf:{kind}"] = str(exc)
            continue
        fitted[kind] = model
        table = rerank.table_matrix(model.neighbours(config.serving.neighbours), s.train.items)
        served = _evaluate(s.holdout, _table_scorer(s.holdout, table), ks)
        full_model = _evaluate(s.holdout, _model_scorer(model, s.holdout), ks)
        values = {**_metrics(served), **_metrics(full_model, "model_")}
        log.info(
            "cf %s: %s %.4f (model %.4f)", kind, metric, values[metric], values["model_" + metric]
        )
        scored.append((values[metric], kind, table, values))
    if not scored:
        result.skipped["cf"] = "no collaborative-filtering model could be fitted"
        return None
    _, kind, table, values = max(scored, key=lambda t: (t[0], t[1]))
    final = _finish(models[kind], grams, f"{kind}:full", s.full, warm_start=fitted[kind])
    _save(final, directory, config)
    result.fitted.append(
        Fitted(
            kind="cf",
            directory=directory,
            config={"model": kind, **models[kind].config.model_dump(mode="json")},
            metrics={
                **values,
                **_metrics(baseline, "popularity_"),
                "queries": float(s.holdout.size),
                **{f"candidate_{k}_{metric}": v for v, k, _, _ in scored},
            },
            floor=Floor(metric, baseline.mean(metric)),
        )
    )
    return table


def _model_scorer(model: Model, holdout: Holdout) -> evaluation.Scorer:
    return lambda batch: model.score(holdout.known[batch])


def _save(model: Model, directory: Path, config: TrainingConfig) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / MODEL_DIR)
    (directory / NEIGHBOURS_FILE).write_bytes(
        model.neighbours(config.serving.neighbours).to_bytes()
    )


def _fit_co_purchase(
    config: TrainingConfig,
    s: _Shop,
    models: dict[str, Model],
    grams: dict[str, Gram],
    directory: Path,
    result: FitResult,
) -> sparse.csr_matrix:
    assert s.order_train is not None and s.order_holdout is not None
    ks = _ks(config)
    metric = f"{config.validation.metric}@{config.validation.k}"
    popularity = build("popularity")
    popularity.fit(s.order_train)
    baseline = _evaluate(s.order_holdout, _model_scorer(popularity, s.order_holdout), ks)
    model = _finish(models["co_purchase"], grams, "co_purchase:train", s.order_train)
    table = rerank.table_matrix(model.neighbours(config.serving.neighbours), s.orders.items)
    served = _evaluate(s.order_holdout, _table_scorer(s.order_holdout, table), ks)
    final = _finish(models["co_purchase"], grams, "co_purchase:full", s.orders)
    _save(final, directory, config)
    result.fitted.append(
        Fitted(
            kind="co_purchase",
            directory=directory,
            config={"model": "co_purchase", **models["co_purchase"].config.model_dump(mode="json")},
            metrics={
                **_metrics(served),
                **_metrics(baseline, "popularity_"),
                "queries": float(s.order_holdout.size),
            },
            floor=Floor(metric, baseline.mean(metric)),
        )
    )
    # The re-ranker reads the table over the shoppers' vocabulary.
    return rerank.table_matrix(model.neighbours(config.serving.neighbours), s.train.items)


# --- re-ranker ----------------------------------------------------------------------------


def _device_codes(values: np.ndarray) -> np.ndarray:
    return np.array([features.DEVICES.get(str(v), np.nan) for v in values], dtype=np.float64)


def _sessions(events: pa.Table, users: np.ndarray, items: np.ndarray) -> rerank.Queries:
    """Per user (in `users` order): their latest SESSION_ITEMS products, weighted as serving
    weighs a session's recent views, the latest as anchor, and their latest device."""
    ordered = events.take(pc.sort_indices(events, [("user", "ascending"), ("ts", "descending")]))
    ev_users = ordered.column("user").to_numpy(zero_copy_only=False).astype(str)
    ev_items = _positions(
        items, ordered.column("product_id").to_numpy(zero_copy_only=False).astype(str)
    )
    devices = ordered.column("device").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, ev_users[1:] != ev_users[:-1]])
    ends = np.r_[starts[1:], len(ev_users)]
    where = {u: (lo, hi) for u, lo, hi in zip(ev_users[starts], starts, ends, strict=True)}
    rows, cols, weights = [], [], []
    anchor = np.full(len(users), -1, dtype=np.int64)
    device = np.full(len(users), np.nan)
    for q, user in enumerate(users):
        lo, hi = where.get(str(user), (0, 0))
        seen = [i for i in dict.fromkeys(ev_items[lo:hi].tolist()) if i >= 0][:SESSION_ITEMS]
        if seen:
            anchor[q] = seen[0]
            rows += [q] * len(seen)
            cols += seen
            weights += [RECENCY_DECAY**n for n in range(len(seen))]
        if hi > lo:
            device[q] = features.DEVICES.get(str(devices[lo]), np.nan)
    session = sparse.csr_matrix((weights, (rows, cols)), shape=(len(users), len(items)))
    return rerank.Queries(session, anchor, device, sparse.csr_matrix(session.shape))


def _frame(view: ShopView | None, s: _Shop, now_ts: float) -> features.ProductFrame:
    """Catalog features for the training vocabulary; popularity from the training split (a
    percentile, as serving's is of its live counters)."""
    popularity = np.asarray(s.train.matrix.sum(axis=0)).ravel()
    recent = s.split.train.filter(
        pc.greater_equal(s.split.train.column("ts"), now_ts - TRENDING_DAYS * data_mod.DAY_S)
    )
    trending = np.bincount(
        np.maximum(
            _positions(
                s.train.items,
                recent.column("product_id").to_numpy(zero_copy_only=False).astype(str),
            ),
            0,
        ),
        minlength=s.train.n_items,
    ).astype(np.float64)
    if view is None:
        return features.ProductFrame.bare(popularity, trending)
    positions = np.array([view.index.get(str(p), -1) for p in s.train.items], dtype=np.int64)
    return (
        features.ProductFrame.from_view(view)
        .select(positions)
        .with_popularity(popularity, trending)
    )


ATTRIBUTION_S = 86_400.0  # a cart or purchase this soon after a click is the click's outcome


def outcomes(events: pa.Table) -> dict[tuple[str, str], float]:
    """(ranking id, product) -> what the shopper did with a recommended product: clicked it
    (1), then added it to the cart (2) or bought it (3) within ATTRIBUTION_S of the click.
    Carts and purchases are joined to the ranking id through the click of the same shopper
    on the same product; one that carries a ranking id itself counts directly."""
    attributed = pc.is_valid(events.column("ranking_id"))
    clickers = pc.unique(events.filter(attributed).column("user"))
    follow_ups = pc.and_(
        pc.is_in(events.column("kind"), value_set=pa.array(["cart", "purchase"])),
        pc.is_in(events.column("user"), value_set=clickers),
    )
    events = events.filter(pc.or_(attributed, follow_ups))  # the few rows that matter
    label: dict[tuple[str, str], float] = {}
    clicks: dict[tuple[str, str], list[tuple[float, str]]] = {}
    later: list[tuple[str, str, float, float]] = []
    for user, pid, kind, ts, rid in zip(
        events.column("user").to_pylist(),
        events.column("product_id").to_pylist(),
        events.column("kind").to_pylist(),
        events.column("ts").to_pylist(),
        events.column("ranking_id").to_pylist(),
        strict=True,
    ):
        value = rerank.LABELS.get(kind, 0.0)
        if rid is not None and value > 0:
            label[(rid, pid)] = max(label.get((rid, pid), 0.0), value)
        if kind == "click" and rid is not None:
            clicks.setdefault((user, pid), []).append((ts, rid))
        elif value > 1 and rid is None:
            later.append((user, pid, ts, value))
    for user, pid, ts, value in later:
        for clicked_at, rid in clicks.get((user, pid), ()):
            if 0 <= ts - clicked_at <= ATTRIBUTION_S:
                label[(rid, pid)] = max(label.get((rid, pid), 0.0), value)
    return label


def _impressions(
    shop: data_mod.ShopData, s: _Shop, tables: dict[str, sparse.csr_matrix], limit: int
) -> tuple[features.Rows, np.ndarray] | None:
    """Rows from what shoppers were shown: the shown products in their order, labelled by what
    the shopper did with them under the same ranking id (click 1, cart 2, purchase 3)."""
    table = shop.impressions
    if table.num_rows == 0:
        return None
    table = table.sort_by("ts").slice(max(0, table.num_rows - limit))  # the latest ones
    label = outcomes(shop.events)
    users = np.array(table.column("user").to_pylist(), dtype=str)
    queries = _sessions(s.split.train, users, s.train.items)
    q_idx, items, positions, labels = [], [], [], []
    for q, (rid, shown) in enumerate(
        zip(
            table.column("ranking_id").to_pylist(),
            table.column("products").to_pylist(),
            strict=True,
        )
    ):
        known = _positions(s.train.items, np.array(shown, dtype=str))
        for pos, (pid, i) in enumerate(zip(shown, known, strict=True)):
            if i >= 0:
                q_idx.append(q)
                items.append(i)
                positions.append(pos + 1)
                labels.append(label.get((rid, pid), 0.0))
    if not q_idx:
        return None
    query, item = np.array(q_idx, dtype=np.int64), np.array(items, dtype=np.int64)
    sources = {name: rerank.lookup(queries.session @ m, query, item) for name, m in tables.items()}
    device = _device_codes(np.array(table.column("device").to_pylist(), dtype=object))
    rows = features.Rows(
        query=query,
        item=item,
        base=1.0 / np.array(positions, dtype=np.float64),
        sources=sources,
        anchor=queries.anchor,
        session=queries.session,
        device=np.where(np.isnan(device), queries.device, device),
        position=np.array(positions, dtype=np.float64),
    )
    return rows, np.array(labels, dtype=np.float32)


def _fit_reranker(
    config: TrainingConfig,
    shop: data_mod.ShopData,
    s: _Shop,
    tables: dict[str, sparse.csr_matrix],
    view: ShopView | None,
    directory: Path,
    result: FitResult,
    now_ts: float,
) -> None:
    rc = config.reranker
    metric = f"{config.validation.metric}@{config.validation.k}"
    ks = _ks(config)
    sources = tuple(name for name in features.SOURCES if name in tables)
    frame = _frame(view, s, now_ts)
    # The re-ranker learns from (and validates on) a sample of the validation shoppers.
    picked = np.arange(s.holdout.size)
    if len(picked) > rc.max_queries:
        picked = np.sort(
            np.argsort([_hash(str(u)) for u in s.train.users[s.holdout.rows]])[: rc.max_queries]
        )
    holdout = Holdout(
        s.holdout.known[picked],
        s.holdout.relevant[picked],
        s.holdout.n_relevant[picked],
        s.holdout.rows[picked],
    )
    users = s.train.users[holdout.rows]
    queries = _sessions(s.split.train, users, s.train.items)
    queries = rerank.Queries(queries.session, queries.anchor, queries.device, holdout.known)
    rows = rerank.candidates(tables, PERSONAL_BLEND, queries, rc.candidates)
    labels = rerank.holdout_labels(rows, holdout.relevant)
    x = features.matrix(frame, rows, now_ts, sources)

    in_validation = np.array([_hash(str(u)) % 5 == 0 for u in users])  # one shopper in five
    fit_rows = np.flatnonzero(~in_validation[rows.query])
    keep = fit_rows[rerank.subsample(_take(rows, fit_rows), labels[fit_rows], rc.negatives, seed=0)]
    train_set = rerank.Dataset(x[keep], labels[keep], rows.query[keep])
    valid_rows = np.flatnonzero(in_validation[rows.query])
    valid_set = rerank.Dataset(x[valid_rows], labels[valid_rows], rows.query[valid_rows])

    impressions = _impressions(shop, s, tables, rc.max_impressions)
    n_impressions = 0
    if impressions is not None:
        imp_rows, imp_labels = impressions
        offset = int(rows.query.max()) + 1 if len(rows.query) else 0
        imp_x = features.matrix(frame, imp_rows, now_ts, sources)
        n_impressions = len(np.unique(imp_rows.query))
        train_set = rerank.Dataset(
            np.vstack([train_set.x, imp_x]),
            np.concatenate([train_set.y, imp_labels]),
            np.concatenate([train_set.qid, imp_rows.query + offset]),
        )
    if (
        len(np.unique(train_set.qid[train_set.y > 0])) < rc.min_queries
        or not (valid_set.y > 0).any()
    ):
        result.skipped["reranker"] = (
            f"too few queries with a positive to learn from "
            f"({len(np.unique(train_set.qid[train_set.y > 0]))} < {rc.min_queries})"
        )
        return
    model = rerank.Reranker(rc, sources)
    workers = config.ray.for_size(len(train_set.y), config.ray.min_reranker_rows)
    result.workers["xgboost"] = workers.num_workers
    if workers.num_workers > 0:
        result.seconds["ray_train_xgboost"] = model.fit_distributed(train_set, valid_set, workers)
    else:
        model.fit(train_set, valid_set)

    # Validation: the same candidates in their base order and re-ranked, and popularity.
    valid_q = np.flatnonzero(in_validation)
    sub = np.isin(rows.query, valid_q)
    depth = max(max(ks), rc.candidates)
    base_lists = evaluation.ranked_lists(
        rows.query[sub], rows.item[sub], rows.base[sub], len(users), depth
    )
    new_lists = evaluation.ranked_lists(
        rows.query[sub], rows.item[sub], model.score(x[sub]), len(users), depth
    )
    relevant = holdout.relevant[valid_q]
    n_rel = holdout.n_relevant[valid_q]
    base = evaluation.evaluate_lists(base_lists[valid_q], relevant, ks, n_relevant=n_rel)
    reranked = evaluation.evaluate_lists(new_lists[valid_q], relevant, ks, n_relevant=n_rel)
    popularity = build("popularity")
    popularity.fit(s.train)
    pop_holdout = Holdout(holdout.known[valid_q], relevant, n_rel, holdout.rows[valid_q])
    pop = _evaluate(pop_holdout, _model_scorer(popularity, pop_holdout), ks)
    model.save(directory)
    by_base = base.mean(metric) >= pop.mean(metric)
    floor = Floor(
        metric,
        max(base.mean(metric), pop.mean(metric)),
        "the candidates' base order" if by_base else "the popularity baseline",
    )
    result.fitted.append(
        Fitted(
            kind="reranker",
            directory=directory,
            config={"model": "xgboost", "sources": list(sources), **rc.model_dump(mode="json")},
            metrics={
                **_metrics(reranked),
                **_metrics(base, "base_"),
                **_metrics(pop, "popularity_"),
                "queries": float(len(valid_q)),
                "training_queries": float(len(np.unique(train_set.qid))),
                "impression_queries": float(n_impressions),
                "best_iteration": float(model.best_iteration or 0),
            },
            floor=floor,
        )
    )


def _take(rows: features.Rows, idx: np.ndarray) -> features.Rows:
    return features.Rows(
        query=rows.query[idx],
        item=rows.item[idx],
        base=rows.base[idx],
        sources={k: v[idx] for k, v in rows.sources.items()},
        anchor=rows.anchor,
        session=rows.session,
        device=rows.device,
        position=None if rows.position is None else rows.position[idx],
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)[:40]
