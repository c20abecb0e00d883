"""The catalog's structure as a groups x items matrix, for models that learn from it (ALS's
catalog_weight, training/models/als.py): one row per collection, tag, vendor, product type and
title word that holds at least two of the fit's products.

Title words are there because titles name what a product is ("linen", "espresso"), in shops
whose tags and types are sparse too; serving's content similarity reads them as well
(deployments/ranking/content.py). On MovieLens-100K they moved Nova ALS's validation NDCG@10
by less than the seeds' spread (a scratch comparison; its figures are in issue 4's note of
2026-12-08); bench:quality in docs/benchmarks.md records the pipeline that uses them.

A group of one product says nothing about how products relate, so it is left out; a group
holding most of the catalog (a "sale" tag, an "all" collection) says little either, and is left
out above `max_share` of the items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

from deployments.ranking.content import title_words
from deployments.ranking.view import ShopView


def from_labels(
    items: Sequence[str] | np.ndarray,
    labels_of: Iterable[tuple[str, Iterable[str]]],
    max_share: float = 0.5,
) -> sparse.csr_matrix:
    """Groups over `items` (the fit's column labels) from (product id, its group labels)
    pairs; products not among the items are ignored. Rows are sorted by label."""
    column = {str(item): j for j, item in enumerate(items)}
    members: dict[str, set[int]] = {}
    for product_id, labels in labels_of:
        j = column.get(product_id)
        if j is None:
            continue
        for label in labels:
            members.setdefault(label, set()).add(j)
    limit = max_share * len(column)
    kept = sorted(k for k, v in members.items() if 2 <= len(v) <= limit)
    rows = np.repeat(np.arange(len(kept)), [len(members[k]) for k in kept])
    cols = np.fromiter((j for k in kept for j in sorted(members[k])), dtype=np.int64)
    return sparse.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)),
        shape=(len(kept), len(column)),
        dtype=np.float32,
    )


def labels(
    *,
    collections: Iterable[str] = (),
    tags: Iterable[str] = (),
    vendor: str = "",
    product_type: str = "",
    title: str = "",
) -> list[str]:
    """One product's group labels. Prefixed by their kind, so a tag and a vendor of the same
    name stay apart; case-folded but for collections (ids)."""
    out = [f"collection:{c}" for c in collections]
    out += [f"tag:{t.lower()}" for t in tags]
    if vendor:
        out.append(f"vendor:{vendor.lower()}")
    if product_type:
        out.append(f"type:{product_type.lower()}")
    out += [f"word:{w}" for w in title_words(title)]
    return out


def from_view(view: ShopView, items: Sequence[str] | np.ndarray) -> sparse.csr_matrix:
    """Collections, tags, vendor, product type and title words of each product in the shop's
    view."""
    return from_labels(
        items,
        (
            (
                p.id,
                labels(
                    collections=view.collections[i],
                    tags=view.tags[i],
                    vendor=view.vendor[i],
                    product_type=view.product_type[i],
                    title=p.title,
                ),
            )
            for i, p in enumerate(view.products)
        ),
    )
