"""ingest/popularity.py: forward-decayed popularity and the hits a batch of events makes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from ingest import popularity as pop
from ingest.records import StoredEvent
from ingest.stores.base import Hit

HOUR = pop.WINDOWS["hour"]
DAY = pop.WINDOWS["day"]
EPOCH_S = DAY * pop.EPOCH_HALF_LIVES
AT = datetime(2025, 3, 1, 12, tzinfo=UTC)


def value_now(weight: float, at_s: float, now_s: float, half_life: float) -> float:
    e, score = pop.scaled(weight, at_s, half_life)
    return pop.decayed(score, e, now_s, half_life)


def test_windows_are_half_lives() -> None:
    assert pop.WINDOWS == {"hour": 3600.0, "day": 86400.0, "week": 604800.0}


def test_a_hit_now_counts_its_weight() -> None:
    now = 1_740_830_400.0
    assert value_now(3.0, now, now, DAY) == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize("half_life", [HOUR, DAY, pop.WINDOWS["week"]])
def test_a_hit_one_half_life_older_counts_half(half_life: float) -> None:
    now = 1_740_830_400.0
    assert value_now(1.0, now - half_life, now, half_life) == pytest.approx(0.5, rel=1e-12)
    assert value_now(1.0, now - 3 * half_life, now, half_life) == pytest.approx(0.125, rel=1e-12)


def test_scores_of_different_times_compare_directly() -> None:
    now = 1_740_830_400.0
    e1, older = pop.scaled(1.0, now - DAY, DAY)
    e2, newer = pop.scaled(1.0, now, DAY)
    assert e1 == e2
    assert newer == pytest.approx(2 * older, rel=1e-12)


def test_epoch_and_base() -> None:
    assert pop.epoch(0.0, DAY) == 0
    assert pop.epoch(EPOCH_S - 1, DAY) == 0
    assert pop.epoch(EPOCH_S, DAY) == 1
    assert pop.epoch_base(3, DAY) == 3 * EPOCH_S
    e, score = pop.scaled(2.0, 5 * EPOCH_S, DAY)
    assert (e, score) == (5, 2.0)  # at its epoch's base a hit's increment is its weight


def test_increments_stay_inside_float_range() -> None:
    e, score = pop.scaled(1.0, 6 * EPOCH_S - 1.0, DAY)
    assert e == 5
    assert math.isfinite(score)
    assert score == pytest.approx(2.0 ** (pop.EPOCH_HALF_LIVES - 1 / DAY), rel=1e-9)


def test_epoch_boundary_loses_nothing() -> None:
    """Reader: current epoch's sum + previous epoch's sum scaled by 2^-EPOCH_HALF_LIVES, decayed
    with the current epoch's base, equals decaying each hit directly to now."""
    boundary = 7 * EPOCH_S
    hits = [
        (1.0, boundary - 3 * DAY),
        (2.0, boundary - 1.0),
        (1.0, boundary),
        (4.0, boundary + DAY),
    ]
    now = boundary + 2 * DAY
    sums: dict[int, float] = {}
    for weight, at in hits:
        e, inc = pop.scaled(weight, at, DAY)
        sums[e] = sums.get(e, 0.0) + inc
    assert set(sums) == {6, 7}
    current = pop.epoch(now, DAY)
    combined = sums[current] + sums[current - 1] * 2.0**-pop.EPOCH_HALF_LIVES
    direct = sum(w * 2.0 ** ((at - now) / DAY) for w, at in hits)
    assert pop.decayed(combined, current, now, DAY) == pytest.approx(direct, rel=1e-12)
    # The previous epoch decayed on its own base gives the same contribution.
    assert pop.decayed(sums[current - 1], current - 1, now, DAY) == pytest.approx(
        pop.decayed(sums[current - 1] * 2.0**-pop.EPOCH_HALF_LIVES, current, now, DAY),
        rel=1e-12,
    )


def test_decayed_value_halves_per_half_life_without_new_hits() -> None:
    e, score = pop.scaled(8.0, 1_000_000.0, HOUR)
    values = [pop.decayed(score, e, 1_000_000.0 + k * HOUR, HOUR) for k in range(4)]
    assert values == pytest.approx([8.0, 4.0, 2.0, 1.0], rel=1e-12)


# --- hits -------------------------------------------------------------------------------------


def event(name: str, **kw: object) -> StoredEvent:
    return StoredEvent(
        shop_id="s.myshopify.com",
        event_id=f"ev-{name}-{kw.get('product_id')}",
        name=name,
        occurred_at=kw.pop("occurred_at", AT),  # type: ignore[arg-type]
        client_id="c1",
        privacy_state="guest",
        **kw,  # type: ignore[arg-type]
    )


def test_hits_maps_events_to_signals() -> None:
    later = AT + timedelta(minutes=5)
    events = [
        event("product_viewed", product_id="101"),
        event("product_added_to_cart", product_id="102", quantity=3),
        event(
            "checkout_completed",
            occurred_at=later,
            payload={"items": [{"product_id": "103", "quantity": 2}, {"product_id": "104"}]},
        ),
        event("nova:recommendation_clicked", product_id="105"),
    ]
    assert pop.hits(events) == [
        Hit("101", "view", 1.0, AT),
        Hit("102", "cart", 3.0, AT),
        Hit("103", "purchase", 2.0, later),
        Hit("104", "purchase", 1.0, later),
        Hit("105", "click", 1.0, AT),
    ]
    assert {h.signal for h in pop.hits(events)} == set(pop.SIGNALS)


def test_add_to_cart_without_quantity_counts_one() -> None:
    assert pop.hits([event("product_added_to_cart", product_id="102")]) == [
        Hit("102", "cart", 1.0, AT)
    ]


@pytest.mark.parametrize(
    "e",
    [
        event("product_viewed"),  # no product (should not happen, but must not count)
        event("product_added_to_cart"),
        event("nova:recommendation_clicked"),
        event("product_removed_from_cart", product_id="101"),
        event("checkout_started", payload={"items": [{"product_id": "103", "quantity": 1}]}),
        event("page_viewed", payload={"path": "/"}),
        event("collection_viewed", payload={"collection_id": "9", "product_ids": ["1"]}),
        event("search_submitted", payload={"query": "q", "product_ids": ["1"]}),
        event("cart_viewed", payload={"items": [{"product_id": "1", "quantity": 1}]}),
        event("nova:recommendation_viewed", payload={"products": [{"id": "1", "position": 1}]}),
        event("checkout_completed"),  # no items
    ],
    ids=lambda e: e.name,
)
def test_events_that_make_no_hit(e: StoredEvent) -> None:
    assert pop.hits([e]) == []


def test_hits_of_nothing() -> None:
    assert pop.hits([]) == []
