"""The catalog's groups (collections, tags, vendors, types) as a groups x items matrix."""

from __future__ import annotations

import numpy as np
from support.catalog import product, view

from training import catalog_groups


def rows(matrix, items: list[str]) -> list[set[str]]:  # type: ignore[no-untyped-def]
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
    assert rows(groups, items) == [{"c", "d"}, {"a", "b", "d"}]
    assert groups.dtype == np.float32 and set(groups.data.tolist()) == {1.0}


def test_a_group_holding_most_of_the_catalog_is_left_out() -> None:
    items = [str(i) for i in range(10)]
    labels = [(i, ["sale"] + (["shirts"] if int(i) < 3 else [])) for i in items[:6]]
    groups = catalog_groups.from_labels(items, labels, max_share=0.5)
    assert rows(groups, items) == [{"0", "1", "2"}]  # "sale" has 6 of 10


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
    found = sorted(sorted(r) for r in rows(groups, items))
    # c1, c2, tag cotton, tag acme (apart from vendor acme), vendors, types: Acme and Tee
    # cover 1-2, Other and Mug 3-4, Third and Cap 5-6; labels case-folded.
    assert found == sorted([["1", "2"]] * 4 + [["3", "4"]] * 4 + [["5", "6"]] * 2), found
    assert groups.shape == (10, 6)
