"""Candidate strategies, co-occurrence statistics and content similarity on catalogs whose
right answers are planted."""

from __future__ import annotations

import numpy as np
import pytest
from support.catalog import NOW, baskets, ids, product, view

from deployments.ranking import engine
from deployments.ranking.cooccurrence import NeighbourTable, compute
from deployments.ranking.rules import RuleSet
from deployments.ranking.view import ShopView

NO_RULES = RuleSet()


def rec(
    v: ShopView,
    intent: str,
    product_id: str | None = None,
    limit: int = 5,
    visitor: engine.Visitor | None = None,
    **kw: object,
) -> engine.Result:
    request = engine.Request(intent=intent, limit=limit, product_id=product_id, **kw)  # type: ignore[arg-type]
    return engine.recommend(
        v,
        request,
        visitor or engine.Visitor(),
        rules_for=lambda _: NO_RULES,
        experiments=[],
        now=NOW,
    )


def test_npmi_prefers_planted_pairs_over_a_bestseller() -> None:
    # 1 and 2 are bought together 6 times; 9 is in every basket (a bestseller).
    groups = [[1, 2, 9]] * 6 + [[3, 9]] * 10 + [[4, 9]] * 10 + [[1, 9]] * 2
    table = baskets("co_purchase", groups, measure="npmi")
    neighbours = [p for p, _, _ in table.of("1")]
    assert neighbours[0] == "2"
    assert "9" not in neighbours  # co-occurs with everything: no association
    assert table.of("2")[0][2] == 6  # support


def test_min_support_drops_pairs_seen_once() -> None:
    table = baskets("co_view", [[1, 2], [1, 3], [1, 3]], measure="cosine", min_support=2)
    assert [p for p, _, _ in table.of("1")] == ["3"]
    assert table.of("2") == []


def test_cosine_scores_and_duplicates_in_a_basket() -> None:
    pairs = [("b1", "1"), ("b1", "1"), ("b1", "2"), ("b2", "1"), ("b2", "2"), ("b3", "1")]
    table = compute("co_view", pairs, measure="cosine", min_support=1)
    ((neighbour, score, support),) = table.of("1")
    assert (neighbour, support) == ("2", 2)
    assert score == pytest.approx(2 / np.sqrt(3 * 2))


def test_neighbour_table_round_trips_through_bytes() -> None:
    table = baskets("co_cart", [[1, 2], [1, 2], [2, 3], [2, 3]], measure="cosine")
    again = NeighbourTable.from_bytes(table.to_bytes())
    assert again.kind == "co_cart" and again.baskets == 4
    assert again.of("2") == table.of("2")


def test_unknown_measure_is_refused() -> None:
    with pytest.raises(ValueError, match="measure"):
        compute("x", [], measure="jaccard")


def test_content_similarity_follows_type_tags_and_collections() -> None:
    products = [
        product(1, product_type="Sneakers", tags=["running"], collections=["c1"]),
        product(2, product_type="Sneakers", tags=["running"], collections=["c1"]),
        product(3, product_type="Sneakers", tags=["casual"]),
        product(4, product_type="Mug", tags=["kitchen"], vendor="Other"),
    ]
    v = view(products)
    idx, scores = v.content.similar(v.index["1"], k=3)
    order = [v.products[i].id for i in idx]
    assert order[:2] == ["2", "3"]
    assert "1" not in order
    assert scores[0] > scores[1] > 0
    assert v.content.similar(v.index["1"], k=3)[0] is idx  # cached


def test_related_uses_co_views_then_falls_back_through_the_chain() -> None:
    tees = [product(i, product_type="Tee", collections=["tees"]) for i in range(1, 6)]
    mugs = [
        product(i, product_type="Mug", vendor="Other", collections=["mugs"]) for i in range(6, 11)
    ]
    products = tees + mugs
    co_view = baskets("co_view", [[1, 4]] * 3 + [[1, 5]] * 2, measure="cosine")
    v = view(products, tables=[co_view], popularity={"view:day": {"9": 5.0, "10": 3.0}})
    result = rec(v, "related", "1", limit=9)
    got = ids(result, v)
    assert got[:2] == ["4", "5"]  # behaviour first, best first
    sources = [r.reasons[0]["name"] for r in result.products]
    assert sources[:2] == ["co_view", "co_view"]
    assert result.products[0].reasons[0]["anchor"] == "1"
    # Then content-similar tees, then popular products (mugs by popularity); never "1".
    assert set(got[2:4]) == {"2", "3"} and sources[2:4] == ["content", "content"]
    assert got[4:6] == ["9", "10"] and sources[4:] == ["popular"] * 5
    assert "1" not in got and len(got) == 9 and len(set(got)) == 9


def test_complementary_uses_planted_copurchases_and_needs_stock() -> None:
    products = [product(1), product(2), product(3, quantity=0, policy="continue"), product(4)]
    co_purchase = baskets("co_purchase", [[1, 2]] * 4 + [[1, 3]] * 4 + [[4]] * 4, measure="npmi")
    v = view(products, tables=[co_purchase])
    got = ids(rec(v, "complementary", "1", limit=1), v)
    assert got == ["2"]
    # 3 sells only because it may be oversold: fine for related, not for complementary.
    assert "3" not in ids(rec(v, "complementary", "1", limit=3), v)
    assert "3" in ids(rec(v, "related", "1", limit=3), v)


def test_frequently_bought_together_works_from_the_cart() -> None:
    products = [product(i) for i in range(1, 6)]
    co_purchase = baskets("co_purchase", [[2, 5]] * 3 + [[3, 4]] * 3 + [[1]] * 3, measure="npmi")
    v = view(products, tables=[co_purchase])
    result = rec(v, "frequently_bought_together", None, limit=1, cart=("2",))
    assert ids(result, v) == ["5"]
    assert result.products[0].reasons[0] == {
        "type": "source",
        "name": "co_purchase",
        "score": pytest.approx(1.0, abs=1e-4),
        "anchor": "2",
    }


def test_personalized_follows_the_visitors_recent_views() -> None:
    products = [product(i) for i in range(1, 8)]
    co_view = baskets("co_view", [[1, 2]] * 3 + [[3, 4]] * 3 + [[5, 6]] * 3, measure="cosine")
    v = view(products, tables=[co_view], popularity={"view:day": {"7": 9.0}})
    visitor = engine.Visitor(recent_views=("3", "5"))
    got = ids(rec(v, "personalized", limit=2, visitor=visitor), v)
    assert got == ["4", "6"]  # the most recent view's neighbour first
    anonymous = ids(rec(v, "personalized", limit=1), v)
    assert anonymous == ["7"]  # no history: what is trending


def test_trending_new_arrivals_and_recently_viewed() -> None:
    products = [product(1, age_days=3), product(2, age_days=1), product(3, age_days=300)]
    v = view(products, popularity={"view:day": {"3": 10.0, "1": 2.0}, "purchase:day": {"1": 3.0}})
    assert ids(rec(v, "trending", limit=3), v) == ["1", "3", "2"]  # 2 + 5*3 = 17 > 10
    assert ids(rec(v, "new_arrivals", limit=2), v) == ["2", "1"]
    seen = engine.Visitor(recent_views=("3", "1"))
    result = rec(v, "recently_viewed", limit=2, visitor=seen)
    assert ids(result, v) == ["3", "1"]
    assert {r.reasons[0]["name"] for r in result.products} == {"recently_viewed"}


def test_answer_is_never_empty_while_eligible_products_exist() -> None:
    products = [
        product(1, product_type="Solo", collections=[]),
        product(2, product_type="Else", vendor="V2"),
    ]
    v = view(products)
    for intent in engine.INTENTS:
        context = intent in (*engine.NEEDS_PRODUCT, "frequently_bought_together")
        pid = "1" if context else None
        got = ids(rec(v, intent, pid), v)
        assert (got if context else sorted(got)) == (["2"] if context else ["1", "2"]), intent


def _blend_by_hand(
    v: ShopView, weights: dict[str, float], anchors: list[tuple[int, float]]
) -> list[tuple[int, float, int, str]]:
    """strategies.blend's definition, one product at a time: per table, contributions summed
    and scaled by the table's best total, then weighted and summed over tables; a product keeps
    the table and anchor of its largest contribution, the earlier one on a tie."""
    summed: dict[int, float] = {}
    best: dict[int, tuple[float, int, str]] = {}
    for kind, weight in weights.items():
        if weight <= 0 or kind not in v.neighbours:
            continue
        totals: dict[int, float] = {}
        top: dict[int, tuple[float, int]] = {}
        for a, w in anchors:
            row = v.neighbours[kind].of(a)
            for p, score in zip(*(row[:2] if row is not None else ([], [])), strict=True):
                c = float(score) * w
                totals[int(p)] = totals.get(int(p), 0.0) + c
                if int(p) not in top or c > top[int(p)][0]:
                    top[int(p)] = (c, a)
        if not totals:
            continue
        best_total = max(totals.values())
        for p, total in sorted(totals.items()):
            scaled = weight * total / best_total
            summed[p] = summed.get(p, 0.0) + scaled
            if p not in best or scaled > best[p][0]:
                best[p] = (scaled, top[p][1], kind)
    order = sorted(summed, key=lambda p: (-summed[p], p))
    return [(p, summed[p], best[p][1], best[p][2]) for p in order]


@pytest.mark.parametrize("one_table", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_blend_matches_its_definition_product_by_product(seed: int, one_table: bool) -> None:
    from deployments.ranking import strategies
    from deployments.ranking.view import Neighbours

    rng = np.random.default_rng(seed)
    v = view([product(p) for p in range(1, 41)])
    for kind in ("cf", "co_view", "co_purchase"):
        by_item = {}
        for item in rng.choice(40, size=25, replace=False).tolist():
            neighbours = rng.choice(40, size=int(rng.integers(1, 12)), replace=False)
            # A coarse grid of scores plants exact ties between anchors and between tables.
            scores = rng.integers(1, 5, size=len(neighbours)) / 4.0
            by_item[item] = (neighbours.astype(np.int64), scores, np.ones(len(neighbours)))
        v.neighbours[kind] = Neighbours(kind, by_item)
    if one_table:  # cf and co_purchase know none of the anchors: only co_view answers
        v.neighbours["cf"] = Neighbours("cf", {})
        v.neighbours["co_purchase"] = Neighbours("co_purchase", {})
    anchors = [
        (int(a), float(w))
        for a, w in zip(rng.choice(40, size=6), [1, 0.85, 0.5, 1, 2, 1], strict=True)
    ]
    weights = {"cf": 1.0, "co_view": 0.5, "missing": 3.0, "co_purchase": 0.25, "off": 0.0}

    got = strategies.blend(v, "personal", weights, anchors)

    expected = _blend_by_hand(v, weights, anchors)
    assert got.idx.tolist() == [p for p, _, _, _ in expected]
    assert got.scores.tolist() == [s for _, s, _, _ in expected]
    assert got.anchors is not None and got.anchors.tolist() == [a for _, _, a, _ in expected]
    assert got.sources == [k for _, _, _, k in expected]
    assert got.source == "personal"


def test_blend_of_anchors_without_neighbours_is_empty() -> None:
    from deployments.ranking import strategies

    v = view([product(p) for p in range(1, 5)])
    got = strategies.blend(v, "related", {"co_view": 1.0}, [(0, 1.0)])
    assert len(got.idx) == 0 and got.source == "related"
