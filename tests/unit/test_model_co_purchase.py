"""Co-purchase associations on orders counted by hand.

Orders: AB three times, AC, CD, D. N = 6; n_A = 4, n_B = 3, n_C = 2, n_D = 2; n_AB = 3, n_AC = 1,
n_CD = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from deployments.ranking.cooccurrence import compute
from training.interactions import Interactions
from training.models.base import ModelFitError
from training.models.co_purchase import CoPurchase, CoPurchaseConfig

ORDERS = [["A", "B"]] * 3 + [["A", "C"], ["C", "D"], ["D"]]


def orders(baskets: list[list[str]] = ORDERS, quantity: float = 1.0) -> Interactions:
    rows = [f"o{n}" for n, basket in enumerate(baskets) for _ in basket]
    items = [item for basket in baskets for item in basket]
    return Interactions.from_triples(rows, items, [quantity] * len(items))


def fitted(data: Interactions | None = None, **config: object) -> CoPurchase:
    model = CoPurchase(CoPurchaseConfig.model_validate(config))
    model.fit(data if data is not None else orders())
    return model


def test_npmi_and_support_match_hand_counts() -> None:
    table = fitted(min_support=2).neighbours(5)
    npmi_ab = math.log((3 / 6) / ((4 / 6) * (3 / 6))) / -math.log(3 / 6)
    ((b, score, support),) = table.of("A")
    assert (b, support) == ("B", 3)
    assert score == pytest.approx(npmi_ab, rel=1e-6)
    assert table.of("C") == []  # A-C and C-D were each bought together once
    assert table.baskets == 6


def test_min_support_one_keeps_only_positive_associations() -> None:
    table = fitted(min_support=1).neighbours(5)
    # A-C: p_AC = 1/6 < p_A p_C = 8/36, a negative association, dropped
    assert [n for n, _, _ in table.of("C")] == ["D"]
    ((_, score, support),) = table.of("D")
    assert support == 1
    assert score == pytest.approx(math.log(1.5) / math.log(6), rel=1e-6)


def test_no_pair_with_enough_support_is_a_fit_error() -> None:
    with pytest.raises(ModelFitError, match="4 or more orders"):
        fitted(min_support=4)


def test_lift() -> None:
    table = fitted(min_support=1, measure="lift").neighbours(5)
    ((b, lift_ab, _),) = table.of("A")
    ((c, lift_cd, _),) = table.of("D")
    assert (b, c) == ("B", "C")
    assert lift_ab == pytest.approx(3 * 6 / (4 * 3))
    assert lift_cd == pytest.approx(1 * 6 / (2 * 2))
    assert [n for n, _, _ in table.of("C")] == ["D"]  # A-C has lift 0.75


def test_large_orders_are_left_out_entirely() -> None:
    bulk = [["A", "B", "C", "D", "E", "F"]]
    with_bulk = fitted(orders(ORDERS + bulk), min_support=1, max_basket=5)
    without = fitted(orders(ORDERS), min_support=1, max_basket=5)
    assert with_bulk.baskets == 6
    table, expected = with_bulk.neighbours(5), without.neighbours(5)
    for product in "ABCD":
        assert table.of(product) == expected.of(product)


def test_quantities_do_not_count() -> None:
    single, double = fitted(orders()), fitted(orders(quantity=2.0))
    np.testing.assert_array_equal(single.association.toarray(), double.association.toarray())
    history = sparse.csr_matrix(np.array([[3.0, 0, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(single.score(history), single.score(history / 3))


def test_scores_sum_positive_associations_of_the_history() -> None:
    model = fitted(min_support=1)
    a, b, c, d = range(4)
    history = sparse.csr_matrix(np.array([[1.0, 0, 1.0, 0]], dtype=np.float32))
    scores = model.score(history)[0]
    assert scores[b] == pytest.approx(model.association[a, b])
    assert scores[d] == pytest.approx(model.association[c, d])
    assert scores[b] > 0 and scores[d] > 0


def test_the_model_and_the_serving_refresher_agree() -> None:
    pairs = [(f"o{n}", item) for n, basket in enumerate(ORDERS) for item in basket]
    served = compute("co_purchase", pairs, measure="npmi", min_support=1)
    trained = fitted(min_support=1).neighbours(50)
    for product in "ABCD":
        expected = served.of(product)
        got = trained.of(product)
        assert [(n, k) for n, _, k in got] == [(n, k) for n, _, k in expected]
        np.testing.assert_allclose([s for _, s, _ in got], [s for _, s, _ in expected])
