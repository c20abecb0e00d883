"""The catalog's groups (collections, tags, vendors, types) as a groups x items matrix."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from scipy import sparse
from support.catalog import product, view

from training import catalog_groups, pipeline
from training import config as training_config
from training import data as data_mod


def rows_of(matrix: sparse.csr_matrix, items: list[str]) -> list[set[str]]:
    dense = matrix.toarray()
    return [{items[j] for j in np.flatnonzero(row)} for row in dense]


def test_groups_of_two_or_more_items_sorted_by_label() -> None:
    items = ["a", "b", "c", "d", "e", "f"]
    labels = [
        ("a", ["red", "solo"]),
        ("b", ["red"]),
        ("c", ["blue"]),
        ("d", ["blue", "red"]),
        ("zz", ["blue"]),  # not among the fit's items: ignored
    ]
    groups = catalog_groups.from_labels(items, labels)
    assert groups.shape == (2, 6)
    # "solo" holds one product, so it is left out; "blue" sorts before "red".
    assert rows_of(groups, items) == [{"c", "d"}, {"a", "b", "d"}]
    assert groups.dtype == np.float32 and set(groups.data.tolist()) == {1.0}


def test_a_group_holding_most_of_the_catalog_is_left_out() -> None:
    items = [str(i) for i in range(10)]
    labels = [(i, ["sale"] + (["shirts"] if int(i) < 3 else [])) for i in items[:6]]
    groups = catalog_groups.from_labels(items, labels, max_share=0.5)
    assert rows_of(groups, items) == [{"0", "1", "2"}]  # "sale" has 6 of 10


def test_no_groups_gives_an_empty_matrix_over_the_items() -> None:
    groups = catalog_groups.from_labels(["a", "b"], [])
    assert groups.shape == (0, 2) and groups.nnz == 0


def test_a_shops_view_gives_collections_tags_vendors_and_types_apart() -> None:
    products = [
        product(1, collections=["c1"], tags=["Cotton"], vendor="Acme", product_type="Tee"),
        product(2, collections=["c1"], tags=["cotton"], vendor="Acme", product_type="Tee"),
        product(3, collections=["c2"], tags=["Acme"], vendor="Other", product_type="Mug"),
        product(4, collections=["c2"], tags=["acme"], vendor="Other", product_type="Mug"),
        product(5, vendor="Third", product_type="Cap"),
        product(6, vendor="Third", product_type="Cap"),
    ]
    shop = view(products)
    items = ["1", "2", "3", "4", "5", "6"]
    groups = catalog_groups.from_view(shop, items)
    found = sorted(sorted(r) for r in rows_of(groups, items))
    # c1, c2, tag cotton, tag acme (apart from vendor acme), vendors, types, and the titles'
    # words ("Tee 1", "Tee 2", ...): Acme, Tee and "tee" cover 1-2, Other, Mug and "mug" 3-4,
    # Third, Cap and "cap" 5-6; labels case-folded.
    assert found == sorted([["1", "2"]] * 5 + [["3", "4"]] * 5 + [["5", "6"]] * 3), found
    assert groups.shape == (13, 6)


def test_title_words_group_products_whose_titles_share_them() -> None:
    products = [
        product(1, title="Linen Shirt", vendor="v1", product_type="t1"),
        product(2, title="Linen trousers, 32", vendor="v2", product_type="t2"),
        product(3, title="Espresso cup", vendor="v3", product_type="t3"),
        product(4, title="Espresso CUP (XL)", vendor="v4", product_type="t4"),
        product(5, title="Mug", vendor="v5", product_type="t5"),
        product(6, title="Café crème 2024", vendor="v6", product_type="t6"),
        product(7, title="CRÈME brûlée", vendor="v7", product_type="t7"),
    ]
    items = ["1", "2", "3", "4", "5", "6", "7"]
    groups = catalog_groups.from_view(view(products), items)
    # "linen", "espresso", "cup" and "crème" (any script's letters) lower-cased; "32", "2024"
    # and "xl" are not words; one-product words (shirt, trousers, mug, café, brûlée) say
    # nothing.
    assert sorted(sorted(r) for r in rows_of(groups, items)) == [
        ["1", "2"],
        ["3", "4"],
        ["3", "4"],
        ["6", "7"],
    ]


def test_a_shops_fit_gives_als_the_groups_only_with_a_catalog_weight() -> None:
    t = 1_800_000_000.0
    rows = [(f"u{n}", str((n + k) % 6), t - 3600 + 60 * k) for n in range(30) for k in range(4)]
    user, pid, ts = zip(*rows, strict=True)
    events = pa.table(
        {
            "user": pa.array(user),
            "product_id": pa.array(pid),
            "kind": pa.array(["view"] * len(rows)),
            "ts": pa.array(ts, pa.float64()),
            "ranking_id": pa.array([None] * len(rows), pa.string()),
            "device": pa.array(["mobile"] * len(rows)),
        }
    )
    empty = pa.table({"basket": pa.array([], pa.string()), "product_id": pa.array([], pa.string())})
    shop = data_mod.ShopData(
        "s", data_mod.Window.ending(datetime.fromtimestamp(t, UTC), 30), events, None, empty
    )
    # Products 0-2 share a collection, 3-5 another; 9 has no interactions (not a column).
    catalog = view(
        [product(i, collections=["c1" if i < 3 else "c2"], vendor=f"v{i}") for i in range(6)]
        + [product(9, collections=["c1"])]
    )
    config = training_config.load()
    off = pipeline._prepare(shop, config, t, catalog)
    assert off.train.groups is None and off.full.groups is None
    models = {**config.models, "als": {**config.models["als"], "catalog_weight": 0.3}}
    on = pipeline._prepare(shop, config.model_copy(update={"models": models}), t, catalog)
    for data in (on.train, on.full):
        assert data.groups is not None
        found = sorted(sorted(r) for r in rows_of(data.groups, list(data.items)))
        # Collections c1 and c2 over the fit's columns; product type "Tee" holds all of them,
        # so it is left out, and each vendor holds one.
        assert found == [["0", "1", "2"], ["3", "4", "5"]]
