"""Content similarity between products, for cold products that behaviour knows nothing about.

Each product is a sparse vector of weighted features — its type, collections, tags, vendor and
title words — scaled by inverse document frequency (a feature every product has says nothing)
and normalised, so similarity is the cosine of two vectors. Results are cached per product:
storefront traffic asks about the same product pages over and over.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from ingest.records import Product

FIELD_WEIGHTS = {"type": 2.0, "tag": 1.5, "collection": 1.0, "vendor": 1.0, "word": 0.5}
# A letter, then two or more word characters or hyphens: any script's letters, so "café" and
# "пальто" are words, while sizes and years ("32", "2024") are not.
_WORD = re.compile(r"[^\W\d_][\w-]{2,}")
_CACHE_LIMIT = 20_000


def title_words(title: str) -> set[str]:
    """The words of a product title that can say what it is like: lower-cased, three or more
    characters, starting with a letter (sizes and years say little)."""
    return set(_WORD.findall(title.lower()))


def features(product: Product, ignored_collections: frozenset[str]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if product.product_type:
        out.append(("type:" + product.product_type.lower(), FIELD_WEIGHTS["type"]))
    out += [("tag:" + t.lower(), FIELD_WEIGHTS["tag"]) for t in product.tags]
    out += [
        ("collection:" + c, FIELD_WEIGHTS["collection"])
        for c in product.collections
        if c not in ignored_collections
    ]
    if product.vendor:
        out.append(("vendor:" + product.vendor.lower(), FIELD_WEIGHTS["vendor"]))
    out += [("word:" + w, FIELD_WEIGHTS["word"]) for w in sorted(title_words(product.title))]
    return out


class ContentIndex:
    def __init__(
        self, products: Sequence[Product], ignored_collections: frozenset[str] = frozenset()
    ) -> None:
        """`ignored_collections`: ids of collections that say nothing about similarity, like
        Shopify's "all" and "frontpage" (which its own recommendations ignore too)."""
        per_product = [dict(features(p, ignored_collections)) for p in products]
        df = Counter(f for feats in per_product for f in feats)
        n = max(len(products), 1)
        vocab = {f: i for i, f in enumerate(sorted(df))}
        rows, cols, values = [], [], []
        for row, feats in enumerate(per_product):
            for f, weight in feats.items():
                rows.append(row)
                cols.append(vocab[f])
                values.append(weight * math.log(1 + n / df[f]))
        matrix = sparse.csr_matrix(
            (np.array(values, dtype=np.float64), (rows, cols)), shape=(len(products), len(vocab))
        )
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self._matrix = sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)
        self._by_feature = self._matrix.T.tocsr()  # feature -> products holding it
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def similar(self, idx: int, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Up to k most similar products (indices, cosine scores), best first, not idx itself."""
        cached = self._cache.get(idx)
        if cached is not None:
            return cached
        # Sum, over the product's features, each feature's column of weights: flat arrays and
        # one bincount, far cheaper than scipy's row slicing on every request.
        m, f = self._matrix, self._by_feature
        lo, hi = m.indptr[idx], m.indptr[idx + 1]
        spans = [(f.indptr[j], f.indptr[j + 1]) for j in m.indices[lo:hi]]
        if spans:
            products = np.concatenate([f.indices[a:b] for a, b in spans])
            values = np.concatenate(
                [f.data[a:b] * w for (a, b), w in zip(spans, m.data[lo:hi], strict=True)]
            )
        else:
            products, values = np.zeros(0, dtype=np.int64), np.zeros(0)
        scores = np.bincount(products, weights=values, minlength=m.shape[0])
        scores[idx] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k)[:k]]
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        result = (order.astype(np.int64), scores[order])
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[idx] = result
        return result
