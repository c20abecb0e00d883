"""ingest/session.py: what a batch of events does to a visitor's session state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from ingest import session
from ingest.records import StoredEvent, Visitor

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
_ids = count()


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(name: str, minute: int, product: str | None = None, **kw: object) -> StoredEvent:
    return StoredEvent(
        shop_id="s.myshopify.com",
        event_id=f"ev-{next(_ids)}",
        name=name,
        occurred_at=at(minute),
        client_id="c1",
        privacy_state="guest",
        product_id=product,
        **kw,  # type: ignore[arg-type]
    )


def view(minute: int, product: str) -> StoredEvent:
    return ev("product_viewed", minute, product)


def cart_viewed(minute: int, products: list[str]) -> StoredEvent:
    items = [{"product_id": p, "variant_id": p + "0", "quantity": 1} for p in products]
    return ev("cart_viewed", minute, payload={"items": items})


def fold(
    events: list[StoredEvent], visitor: Visitor | None = None, state: str = "guest"
) -> Visitor:
    return session.apply(visitor or Visitor(client_id="c1"), session.delta(events), state)


# --- delta ------------------------------------------------------------------------------------


def test_delta_orders_by_time_not_by_arrival() -> None:
    d = session.delta([view(3, "c"), view(1, "a"), view(2, "b")])
    assert d.viewed == ["a", "b", "c"]
    assert d.last_seen == at(3)


def test_delta_of_nothing() -> None:
    d = session.delta([])
    assert d == session.SessionDelta()


def test_delta_cart_ops_in_event_order() -> None:
    d = session.delta(
        [
            ev("product_added_to_cart", 1, "a"),
            ev("product_removed_from_cart", 2, "a"),
            cart_viewed(3, ["b", "c", "b"]),
            ev("checkout_completed", 4, payload={"items": [{"product_id": "b", "quantity": 1}]}),
        ]
    )
    assert d.cart_ops == [("add", ("a",)), ("remove", ("a",)), ("set", ("b", "c")), ("set", ())]


def test_delta_ignores_cart_events_without_product() -> None:
    d = session.delta([ev("product_added_to_cart", 1), ev("product_removed_from_cart", 2)])
    assert d.cart_ops == []
    assert d.last_seen == at(2)


def test_delta_customer_id_is_the_latest_known() -> None:
    d = session.delta(
        [
            ev("page_viewed", 1, customer_id="77"),
            ev("page_viewed", 2, customer_id="88"),
            ev("page_viewed", 3),
        ]
    )
    assert d.customer_id == "88"


def test_delta_last_seen_counts_every_event() -> None:
    d = session.delta([ev("page_viewed", 9), view(2, "a")])
    assert d.last_seen == at(9)


# --- apply: recent views ----------------------------------------------------------------------


def test_recent_views_newest_first() -> None:
    v = fold([view(1, "a"), view(2, "b"), view(3, "c")])
    assert v.recent_views == ("c", "b", "a")


def test_recent_views_have_no_duplicates_and_a_reviewed_product_moves_to_the_front() -> None:
    v = fold([view(1, "a"), view(2, "b"), view(3, "a")])
    assert v.recent_views == ("a", "b")
    v = fold([view(4, "b")], v)
    assert v.recent_views == ("b", "a")


def test_recent_views_continue_from_existing_state() -> None:
    before = Visitor(client_id="c1", recent_views=("x", "y"))
    assert fold([view(1, "z"), view(2, "y")], before).recent_views == ("y", "z", "x")


def test_recent_views_are_capped_keeping_the_newest() -> None:
    limit = session.RECENT_LIMIT
    products = [f"p{i}" for i in range(limit + 10)]
    v = fold([view(i, p) for i, p in enumerate(products)])
    assert len(v.recent_views) == limit
    assert v.recent_views[0] == products[-1]
    assert v.recent_views[-1] == products[10]
    assert "p0" not in v.recent_views


def test_cap_applies_to_existing_plus_new() -> None:
    before = Visitor(
        client_id="c1", recent_views=tuple(f"old{i}" for i in range(session.RECENT_LIMIT))
    )
    v = fold([view(1, "new")], before)
    assert len(v.recent_views) == session.RECENT_LIMIT
    assert v.recent_views[0] == "new"
    assert v.recent_views[-1] == f"old{session.RECENT_LIMIT - 2}"


# --- apply: cart ------------------------------------------------------------------------------


def test_cart_add_and_remove() -> None:
    v = fold(
        [
            ev("product_added_to_cart", 1, "a"),
            ev("product_added_to_cart", 2, "b"),
            ev("product_added_to_cart", 3, "a"),
            ev("product_removed_from_cart", 4, "b"),
        ]
    )
    assert v.cart == frozenset({"a"})


def test_removing_what_is_not_in_the_cart_is_harmless() -> None:
    before = Visitor(client_id="c1", cart=frozenset({"a"}))
    assert fold([ev("product_removed_from_cart", 1, "zz")], before).cart == frozenset({"a"})


def test_cart_viewed_sets_the_cart() -> None:
    before = Visitor(client_id="c1", cart=frozenset({"stale", "b"}))
    v = fold([cart_viewed(1, ["b", "c"]), ev("product_added_to_cart", 2, "d")], before)
    assert v.cart == frozenset({"b", "c", "d"})


def test_add_before_cart_viewed_is_overridden_by_it() -> None:
    v = fold([ev("product_added_to_cart", 1, "a"), cart_viewed(2, ["b"])])
    assert v.cart == frozenset({"b"})


def test_checkout_completed_clears_the_cart() -> None:
    before = Visitor(client_id="c1", cart=frozenset({"a", "b"}))
    v = fold([ev("checkout_completed", 1, payload={"items": []})], before)
    assert v.cart == frozenset()


def test_checkout_started_does_not_clear_the_cart() -> None:
    before = Visitor(client_id="c1", cart=frozenset({"a"}))
    assert fold([ev("checkout_started", 1)], before).cart == frozenset({"a"})


def test_add_after_checkout_starts_a_new_cart() -> None:
    before = Visitor(client_id="c1", cart=frozenset({"a"}))
    v = fold([ev("product_added_to_cart", 2, "n"), ev("checkout_completed", 1)], before)
    assert v.cart == frozenset({"n"})  # ordered by time: the checkout came first


# --- apply: last_seen, customer, state --------------------------------------------------------


def test_last_seen_never_goes_back() -> None:
    before = Visitor(client_id="c1", last_seen=at(60))
    assert fold([view(1, "a")], before).last_seen == at(60)
    assert fold([view(61, "a")], before).last_seen == at(61)
    assert fold([view(1, "a")]).last_seen == at(1)


def test_empty_delta_changes_only_the_state() -> None:
    before = Visitor(
        client_id="c1",
        recent_views=("a",),
        cart=frozenset({"b"}),
        last_seen=at(5),
        customer_id="77",
        privacy_state="pending",
    )
    after = session.apply(before, session.SessionDelta(), "guest")
    assert after == Visitor(
        client_id="c1",
        recent_views=("a",),
        cart=frozenset({"b"}),
        last_seen=at(5),
        customer_id="77",
        privacy_state="guest",
    )


def test_customer_id_is_linked_and_kept() -> None:
    v = fold([ev("page_viewed", 1, customer_id="77")])
    assert v.customer_id == "77"
    assert fold([view(2, "a")], v).customer_id == "77"
    assert fold([ev("page_viewed", 3, customer_id="88")], v).customer_id == "88"


def test_apply_does_not_mutate_the_input_visitor() -> None:
    before = Visitor(client_id="c1", recent_views=("a",), cart=frozenset({"a"}))
    fold([view(1, "b"), ev("product_added_to_cart", 2, "b")], before)
    assert before == Visitor(client_id="c1", recent_views=("a",), cart=frozenset({"a"}))


def test_state_is_recorded() -> None:
    assert fold([view(1, "a")], state="pending").privacy_state == "pending"
