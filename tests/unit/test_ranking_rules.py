"""Eligibility (Shopify's own rules), each merchant rule type, their scopes and their order,
and A/B assignment."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from support.catalog import NOW, baskets, ids, product, view

from deployments.ranking import engine
from deployments.ranking.experiments import Experiment, assign, bucket, choose
from deployments.ranking.rules import RuleSet
from deployments.ranking.view import ShopView


def rec(
    v: ShopView,
    rules: list[dict[str, Any]] | None = None,
    *,
    intent: str = "trending",
    product_id: str | None = None,
    limit: int = 10,
    experiments: list[Experiment] = (),  # type: ignore[assignment]
    **kw: Any,
) -> engine.Result:
    rule_set = RuleSet.model_validate({"rules": rules or []})
    request = engine.Request(intent=intent, limit=limit, product_id=product_id, **kw)
    return engine.recommend(
        v, request, engine.Visitor(), rules_for=lambda _: rule_set, experiments=experiments, now=NOW
    )


def popular(n: int) -> dict[str, dict[str, float]]:
    """Products 1..n with popularity n..1, so trending order is 1, 2, ..., n."""
    return {"view:day": {str(i): float(n - i + 1) for i in range(1, n + 1)}}


def test_shopify_eligibility() -> None:
    catalog = [
        product(1),
        product(2, quantity=0),  # sold out
        product(3, quantity=0, policy="continue"),  # oversold allowed
        product(4, status="draft"),
        product(5, published=False),
        product(6, price="0.00"),
        product(7, gift_card=True),
        product(8, provisional=True),
        product(9, tracked=False, quantity=None),  # not tracked: always available
        product(10),
    ]
    v = view(catalog, popularity=popular(10))
    assert ids(rec(v), v) == ["1", "3", "9", "10"]
    # Not the viewed product, not what is in the cart, not what the request excludes.
    related = rec(v, intent="related", product_id="1", cart=("9",), exclude=("10",))
    assert ids(related, v) == ["3"]
    # Complementary needs stock on hand: "continue selling" at zero is not enough.
    co = baskets("co_purchase", [[1, 3]] * 3 + [[1, 10]] * 3 + [[9]] * 3, measure="npmi")
    v = view(catalog, tables=[co], popularity=popular(10))
    assert "3" not in ids(rec(v, intent="complementary", product_id="1"), v)
    assert ids(rec(v, intent="complementary", product_id="1", limit=1), v) == ["10"]


def catalog_for_rules() -> ShopView:
    products = [
        product(1, tags=["sale"], vendor="Acme", price="10.00", age_days=2),
        product(2, tags=["summer"], collections=["77"], vendor="Beta", price="30.00", age_days=40),
        product(
            3, tags=["summer"], vendor="Acme", price="55.00", product_type="Hoodie", age_days=5
        ),
        product(4, vendor="Gamma", price="90.00", age_days=400),
        product(5, tags=["clearance"], vendor="Gamma", price="25.00", age_days=1),
    ]
    pop = popular(5)
    pop["purchase:week"] = {"2": 4.0, "3": 1.0}
    return view(products, popularity=pop)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([{"type": "exclude", "field": "tag", "values": ["SALE"]}], ["2", "3", "4", "5"]),
        ([{"type": "exclude", "field": "vendor", "values": ["gamma"]}], ["1", "2", "3"]),
        ([{"type": "exclude", "field": "product", "values": ["2", "3"]}], ["1", "4", "5"]),
        ([{"type": "include", "field": "collection", "values": ["77"]}], ["2"]),
        ([{"type": "include", "field": "product_type", "values": ["hoodie"]}], ["3"]),
        ([{"type": "price_band", "min": 20, "max": 60}], ["2", "3", "5"]),
        ([{"type": "recency", "days": 10}], ["1", "3", "5"]),
        ([{"type": "min_popularity", "min": 2, "signal": "purchase", "window": "week"}], ["2"]),
        (
            [{"type": "boost", "field": "vendor", "values": ["Gamma"], "factor": 10}],
            ["4", "5", "1", "2", "3"],
        ),
        (
            [{"type": "bury", "field": "tag", "values": ["sale", "summer"]}],
            ["4", "5", "1", "2", "3"],
        ),
        (
            [
                {"type": "pin", "product_id": "5", "position": 1},
                {"type": "pin", "product_id": "4", "position": 2},
            ],
            ["5", "4", "1", "2", "3"],
        ),
    ],
)
def test_each_rule_type(rules: list[dict[str, Any]], expected: list[str]) -> None:
    v = catalog_for_rules()
    assert ids(rec(v, rules), v) == expected


def test_relative_price_band_needs_a_viewed_product() -> None:
    v = catalog_for_rules()
    band = [{"type": "price_band", "relative_min": 0.5, "relative_max": 2.0}]
    # Product 2 costs 30: half to twice that is 15..60.
    assert sorted(ids(rec(v, band, intent="related", product_id="2"), v)) == ["3", "5"]
    assert len(ids(rec(v, band), v)) == 5  # no viewed product: relative bounds do nothing


def test_rules_apply_in_the_documented_order_not_list_order() -> None:
    v = catalog_for_rules()
    rules = [
        {"type": "pin", "product_id": "1", "position": 1},
        {"type": "bury", "field": "product", "values": ["2"]},
        {"type": "boost", "field": "product", "values": ["2", "4"], "factor": 100},
        {"type": "exclude", "field": "tag", "values": ["clearance"]},
        {"type": "include", "field": "vendor", "values": ["Beta", "Gamma", "Acme"]},
    ]
    result = rec(v, rules)
    # exclude drops 5; boost lifts 2 and 4; bury then sends 2 last; the pin puts 1 first.
    assert ids(result, v) == ["1", "4", "3", "2"]
    reasons = {
        v.products[r.idx].id: [x["name"] for x in r.reasons if x["type"] == "rule"]
        for r in result.products
    }
    assert reasons["2"] == ["boost", "bury"] and reasons["1"] == ["pin"]


def test_pin_respects_eligibility_but_not_filters() -> None:
    v = view(
        [product(1), product(2, tags=["hidden"]), product(3, quantity=0)], popularity=popular(3)
    )
    rules = [
        {"type": "exclude", "field": "tag", "values": ["hidden"]},
        {"type": "pin", "product_id": "2", "position": 1},
        {"type": "pin", "product_id": "3", "position": 2},
    ]
    assert ids(rec(v, rules), v) == ["2", "1"]  # 3 is sold out: not even a pin shows it


def test_rule_scopes_devices_intents_widgets_and_time() -> None:
    v = catalog_for_rules()
    mobile_only = [
        {"type": "exclude", "field": "vendor", "values": ["Acme"], "devices": ["mobile"]}
    ]
    assert "1" not in ids(rec(v, mobile_only, device="mobile"), v)
    assert "1" in ids(rec(v, mobile_only, device="desktop"), v)
    widget = [{"type": "include", "field": "product", "values": ["4"], "widgets": ["cart"]}]
    assert ids(rec(v, widget, widget="cart"), v) == ["4"] and len(ids(rec(v, widget), v)) == 5
    scoped = [{"type": "include", "field": "product", "values": ["4"], "intents": ["new_arrivals"]}]
    assert len(ids(rec(v, scoped), v)) == 5
    later = [
        {
            "type": "include",
            "field": "product",
            "values": ["4"],
            "starts_at": (NOW + timedelta(days=1)).isoformat(),
        }
    ]
    ended = [
        {
            "type": "include",
            "field": "product",
            "values": ["4"],
            "ends_at": (NOW - timedelta(seconds=1)).isoformat(),
        }
    ]
    now = [
        {
            "type": "include",
            "field": "product",
            "values": ["4"],
            "starts_at": (NOW - timedelta(days=1)).isoformat(),
            "ends_at": (NOW + timedelta(days=1)).isoformat(),
        }
    ]
    assert len(ids(rec(v, later), v)) == 5 and len(ids(rec(v, ended), v)) == 5
    assert ids(rec(v, now), v) == ["4"]
    disabled = [{"type": "include", "field": "product", "values": ["4"], "enabled": False}]
    assert len(ids(rec(v, disabled), v)) == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "price_band"},
        {"type": "boost", "field": "tag", "values": ["x"], "factor": 0.5},
        {"type": "exclude", "field": "color", "values": ["red"]},
        {"type": "exclude", "field": "tag", "values": []},
        {"type": "pin", "product_id": "1", "position": 0},
        {"type": "teleport"},
        {"type": "recency", "days": 3, "devices": ["watch"]},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate({"rules": [bad]})


def experiment(**kw: Any) -> Experiment:
    doc: dict[str, Any] = {
        "id": "exp1",
        "name": "Test",
        "salt": "s1",
        "status": "running",
        "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
    }
    doc.update(kw)
    return Experiment.model_validate(doc)


def test_assignment_is_sticky_and_split_by_weight() -> None:
    e = experiment(variants=[{"name": "a", "weight": 3}, {"name": "b", "weight": 1}])
    counts = Counter(assign(e, f"client-{n}").name for n in range(20_000))
    assert counts["a"] / 20_000 == pytest.approx(0.75, abs=0.015)
    assert all(assign(e, "client-7") == assign(e, "client-7") for _ in range(5))
    reshuffled = experiment(salt="s2", variants=e.model_dump()["variants"])
    moved = sum(assign(e, f"c{n}").name != assign(reshuffled, f"c{n}").name for n in range(2000))
    assert moved > 300  # a new salt reassigns a good share of shoppers


def test_assignment_is_the_same_in_another_process() -> None:
    """Replicas are separate processes: assignment may depend only on (salt, unit)."""
    code = (
        "from deployments.ranking.experiments import bucket; "
        "print(' '.join(repr(bucket('s1', f'u{n}')) for n in range(50)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [repr(bucket("s1", f"u{n}")) for n in range(50)]
    import hashlib

    digest = hashlib.sha256(b"s1:u0").digest()
    assert bucket("s1", "u0") == int.from_bytes(digest[:8], "big") / 2**64


def test_segments_and_scope_choose_who_is_enrolled() -> None:
    e = experiment(
        segment={"devices": ["mobile"], "visitor": "returning", "countries": ["de"]},
        intents=["related"],
    )
    args = {
        "intent": "related",
        "widget": None,
        "device": "mobile",
        "returning": True,
        "country": "DE",
    }
    assert choose([e], "u1", **args) is not None
    for change in (
        {"device": "desktop"},
        {"returning": False},
        {"country": "FR"},
        {"intent": "trending"},
    ):
        assert choose([e], "u1", **{**args, **change}) is None, change
    assert choose([e], None, **args) is None  # no id, not enrolled
    assert choose([experiment(status="draft")], "u1", **args) is None


def test_response_carries_the_variant_and_a_holdout_shows_nothing() -> None:
    v = catalog_for_rules()
    e = experiment(
        variants=[
            {"name": "control", "holdout": True, "weight": 1},
            {"name": "popular", "strategy": "popular", "weight": 1},
        ]
    )
    results = {u: rec(v, experiments=[e], unit=u) for u in (f"c{n}" for n in range(40))}
    held = [r for r in results.values() if r.variant == "control"]
    shown = [r for r in results.values() if r.variant == "popular"]
    assert held and shown
    assert all(r.products == [] and r.experiment == "exp1" for r in held)
    assert all(len(r.products) == 5 for r in shown)
    assert engine.parse_ranking_id(shown[0].ranking_id) == ("exp1", "popular")
    assert engine.parse_ranking_id(rec(v).ranking_id) == (None, None)


def test_variant_rule_set_version_is_used() -> None:
    v = catalog_for_rules()
    sets = {
        None: RuleSet(),
        3: RuleSet.model_validate(
            {"rules": [{"type": "include", "field": "product", "values": ["4"]}]}
        ),
    }
    e = experiment(variants=[{"name": "a", "rules_version": 3}, {"name": "b", "rules_version": 3}])
    result = engine.recommend(
        v,
        engine.Request(intent="trending", limit=5, unit="u"),
        engine.Visitor(),
        rules_for=lambda n: sets[n],
        experiments=[e],
        now=NOW,
    )
    assert ids(result, v) == ["4"]


def test_invalid_experiments_are_refused() -> None:
    with pytest.raises(ValidationError):
        experiment(variants=[{"name": "only"}])
    with pytest.raises(ValidationError):
        experiment(variants=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError):
        experiment(variants=[{"name": "has space"}, {"name": "b"}])
    with pytest.raises(ValidationError):
        experiment(variants=[{"name": "a", "weight": 0}, {"name": "b"}])
