"""Re-ranker features: one function computes them for training (training/rerank.py, many
queries at once) and for serving (deployments/ranking/engine.py, one request), so the model
sees the same numbers in both places.

A row is one (query, candidate) pair. A query is a request's context: an anchor product (the
product page, else the latest item the shopper touched), the shopper's recent items with
weights, the device. Values a row cannot have (no anchor, no price) are NaN, which XGBoost
treats as missing and learns a direction for.

Position: rows learnt from impressions carry the position the product was shown at; rows
learnt from history and every row at serving time carry NaN. The model can then explain
clicks by position during training without that explanation being applied when ranking
(YouTube's "position as a training-only feature" device), so it does not learn the old order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from deployments.ranking.view import ShopView

# The candidate sources a shop's re-ranker reads by default: its neighbour tables. A re-ranker
# stores the sources it was fitted with; each adds two features: "<source>_score", the source's
# score for the candidate over the query's best, and "<source>_rank", log2(2 + its rank by that
# source among the query's candidates).
SOURCES = ("cf", "co_purchase", "co_view", "co_cart")
CONTEXT_FEATURES = (
    "base_score",  # the candidate's score in the order being re-ranked, / the query's best
    "base_rank",  # log2(2 + rank) in that order
    "popularity",  # percentile in the shop
    "trending",  # percentile of recent activity
    "age_days",  # log1p(days since the product was created)
    "price_ratio",  # log(price / anchor's price)
    "shared_collections",
    "same_vendor",
    "same_type",
    "tag_overlap",  # Jaccard of tags with the anchor
    "session_affinity",  # cosine of collections with the session's weighted collections
    "history_length",  # log1p(recent items)
    "mobile",
    "position",
)
DEVICES = {"mobile": 1.0, "tablet": 1.0, "desktop": 0.0}


@dataclass(frozen=True)
class ProductFrame:
    """Per product (by index): what features read about it."""

    price: np.ndarray  # float64, NaN when unknown
    created: np.ndarray  # float64 unix seconds, NaN when unknown
    popularity: np.ndarray  # percentile in [0, 1]
    trending: np.ndarray  # percentile in [0, 1]
    collections: sparse.csr_matrix  # products x collections, 0/1
    tags: sparse.csr_matrix  # products x tags, 0/1
    vendor: np.ndarray  # int code, -1 when none
    product_type: np.ndarray  # int code, -1 when none

    @property
    def size(self) -> int:
        return len(self.price)

    @classmethod
    def bare(cls, popularity: np.ndarray, trending: np.ndarray | None = None) -> ProductFrame:
        """Items known only by behaviour (no catalog): everything else is missing."""
        n = len(popularity)
        empty = sparse.csr_matrix((n, 0), dtype=np.float32)
        return cls(
            price=np.full(n, np.nan),
            created=np.full(n, np.nan),
            popularity=percentile(popularity),
            trending=percentile(popularity if trending is None else trending),
            collections=empty,
            tags=empty,
            vendor=np.full(n, -1),
            product_type=np.full(n, -1),
        )

    @classmethod
    def from_view(cls, view: ShopView) -> ProductFrame:
        """The catalog side of a shop's view; popularity from its live snapshot."""
        found = view.cache.get("product_frame")
        if found is None:
            price = np.where(view.price > 0, view.price, np.nan)
            created = np.where(view.created > 0, view.created, np.nan)
            popularity = sum(
                (
                    view.popularity.get(f"{signal}:week", np.zeros(view.size))
                    for signal in ("view", "cart", "purchase")
                ),
                np.zeros(view.size),
            )
            found = view.cache["product_frame"] = cls(
                price=price,
                created=created,
                popularity=percentile(popularity),
                trending=percentile(view.trending()),
                collections=incidence(view.collections),
                tags=incidence(view.tags),
                vendor=codes(view.vendor),
                product_type=codes(view.product_type),
            )
        return found

    def select(self, positions: np.ndarray) -> ProductFrame:
        """Rows for other item numbering: positions[i] is item i's row here, -1 unknown."""
        known = positions >= 0
        p = np.where(known, positions, 0)

        def pick(values: np.ndarray, missing: float) -> np.ndarray:
            return np.where(known, values[p], missing)

        def pick_rows(m: sparse.csr_matrix) -> sparse.csr_matrix:
            return sparse.diags(known.astype(np.float32)) @ m[p]

        return ProductFrame(
            price=pick(self.price, np.nan),
            created=pick(self.created, np.nan),
            popularity=pick(self.popularity, 0.0),
            trending=pick(self.trending, 0.0),
            collections=pick_rows(self.collections).tocsr(),
            tags=pick_rows(self.tags).tocsr(),
            vendor=pick(self.vendor, -1).astype(np.int64),
            product_type=pick(self.product_type, -1).astype(np.int64),
        )

    def with_popularity(self, popularity: np.ndarray, trending: np.ndarray) -> ProductFrame:
        return replace(self, popularity=percentile(popularity), trending=percentile(trending))


def percentile(values: np.ndarray) -> np.ndarray:
    """Each value's rank share in (0, 1]; ties share the highest rank, zero stays zero."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values
    order = np.sort(values)
    share = np.searchsorted(order, values, side="right") / len(values)
    return np.where(values > 0, share, 0.0)


def codes(labels: list[str]) -> np.ndarray:
    """Integer codes for labels, -1 for the empty label."""
    known: dict[str, int] = {}
    return np.array([known.setdefault(v, len(known)) if v else -1 for v in labels], dtype=np.int64)


def incidence(sets: list[frozenset[str]]) -> sparse.csr_matrix:
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, members in enumerate(sets):
        for m in sorted(members):
            rows.append(row)
            cols.append(vocabulary.setdefault(m, len(vocabulary)))
    return sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sets), len(vocabulary))
    )


@dataclass(frozen=True)
class Rows:
    """Candidate rows of one or many queries; row r pairs query[r] with item[r]."""

    query: np.ndarray  # int64 per row, queries numbered 0..n_queries-1, rows grouped by query
    item: np.ndarray  # int64 per row
    base: np.ndarray  # float64 per row, the order being re-ranked (higher first)
    sources: Mapping[str, np.ndarray]  # per source, float64 per row (0: not a candidate of it)
    anchor: np.ndarray  # int64 per query, -1 when none
    session: sparse.csr_matrix  # queries x products, weights of the recent items
    device: np.ndarray  # float64 per query (DEVICES), NaN when unknown
    position: np.ndarray | None = None  # float64 per row (impressions only)


def names(sources: Sequence[str]) -> list[str]:
    return [*CONTEXT_FEATURES, *(f"{s}_{part}" for s in sources for part in ("score", "rank"))]


def matrix(
    frame: ProductFrame, rows: Rows, now: float, sources: Sequence[str] = SOURCES
) -> np.ndarray:
    """float32 (rows x names(sources)); a source absent from rows.sources is all NaN."""
    n = len(rows.item)
    out = np.full((n, len(CONTEXT_FEATURES) + 2 * len(sources)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    column = {name: i for i, name in enumerate(names(sources))}
    q, item = rows.query, rows.item
    out[:, column["base_score"]] = rows.base / _query_max(q, rows.base)[q]
    out[:, column["base_rank"]] = np.log2(2 + _rank_in_query(q, rows.base))
    for source in sources:
        values = rows.sources.get(source)
        if values is not None:
            out[:, column[f"{source}_score"]] = values / _query_max(q, values)[q]
            out[:, column[f"{source}_rank"]] = np.log2(2 + _rank_in_query(q, values))
    out[:, column["popularity"]] = frame.popularity[item]
    out[:, column["trending"]] = frame.trending[item]
    age = (now - frame.created[item]) / 86_400.0
    out[:, column["age_days"]] = np.log1p(np.maximum(age, 0.0))

    anchor = rows.anchor[q]
    has = anchor >= 0
    a = np.where(has, anchor, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(frame.price[item] / frame.price[a])
    out[:, column["price_ratio"]] = np.where(has, ratio, np.nan)
    if frame.collections.shape[1]:
        shared = _rowwise_dot(frame.collections, item, frame.collections, a)
        out[:, column["shared_collections"]] = np.where(has, shared, np.nan)
    out[:, column["same_vendor"]] = _same(frame.vendor, item, a, has)
    out[:, column["same_type"]] = _same(frame.product_type, item, a, has)
    if frame.tags.shape[1]:
        both = _rowwise_dot(frame.tags, item, frame.tags, a)
        sizes = np.diff(frame.tags.indptr)
        union = sizes[item] + sizes[a] - both
        jaccard = np.divide(both, union, out=np.zeros(n), where=union > 0)
        out[:, column["tag_overlap"]] = np.where(has, jaccard, np.nan)

    recent = np.diff(rows.session.indptr)
    if frame.collections.shape[1]:
        profile = (rows.session @ frame.collections).tocsr()
        dot = _rowwise_dot(frame.collections, item, profile, q)
        norm_c = np.sqrt(np.diff(frame.collections.indptr))[item]
        norm_p = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())[q]
        denom = norm_c * norm_p
        affinity = np.divide(dot, denom, out=np.zeros(n), where=denom > 0)
        out[:, column["session_affinity"]] = np.where(recent[q] > 0, affinity, np.nan)
    out[:, column["history_length"]] = np.log1p(recent[q])
    out[:, column["mobile"]] = rows.device[q]
    if rows.position is not None:
        out[:, column["position"]] = rows.position
    return out


def _query_max(q: np.ndarray, values: np.ndarray) -> np.ndarray:
    best = np.zeros(int(q.max()) + 1)
    np.maximum.at(best, q, values)
    return np.where(best > 0, best, 1.0)


def _rank_in_query(q: np.ndarray, values: np.ndarray) -> np.ndarray:
    order = np.lexsort((-values, q))
    ranks = np.empty(len(q), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(q[order])) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(q)]))
    ranks[order] = np.arange(len(q)) - first
    return ranks


def _rowwise_dot(
    left: sparse.csr_matrix, left_rows: np.ndarray, right: sparse.csr_matrix, right_rows: np.ndarray
) -> np.ndarray:
    return np.asarray(left[left_rows].multiply(right[right_rows]).sum(axis=1)).ravel()


def _same(codes: np.ndarray, item: np.ndarray, anchor: np.ndarray, has: np.ndarray) -> np.ndarray:
    equal = (codes[item] == codes[anchor]) & (codes[item] >= 0)
    return np.where(has & (codes[anchor] >= 0), equal.astype(np.float64), np.nan)
