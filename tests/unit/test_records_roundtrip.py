"""ingest/records.py: StoredEvent serialisation and Shop key acceptance."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ingest.records import EVENT_COLUMNS, Product, Shop, StoredEvent, Variant

AT = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def full_event() -> StoredEvent:
    return StoredEvent(
        shop_id="nova-demo.myshopify.com",
        event_id="ev-1",
        name="checkout_completed",
        occurred_at=AT,
        client_id="client-1",
        privacy_state="authenticated",
        customer_id="77",
        product_id=None,
        variant_id=None,
        quantity=None,
        order_id="5550001",
        ranking_id=None,
        device="mobile",
        country="GB",
        payload={
            "items": [{"product_id": "102", "variant_id": "1020", "quantity": 2, "price": 19.5}],
            "total": 39.0,
            "currency": "USD",
            "first_order": True,
            "note": "naïve ☃",
        },
        received_at=AT + timedelta(seconds=2),
    )


def test_json_round_trip_of_a_full_event() -> None:
    e = full_event()
    assert StoredEvent.from_json(e.to_json()) == e


def test_json_round_trip_from_bytes() -> None:
    e = full_event()
    assert StoredEvent.from_json(e.to_json().encode()) == e


def test_json_round_trip_of_a_minimal_event() -> None:
    e = StoredEvent(
        shop_id="s.myshopify.com",
        event_id="ev-2",
        name="page_viewed",
        occurred_at=AT,
        client_id="c",
        privacy_state="guest",
    )
    again = StoredEvent.from_json(e.to_json())
    assert again == e
    assert again.received_at is None
    assert again.payload == {}


def test_json_has_every_column_and_iso_timestamps() -> None:
    d = json.loads(full_event().to_json())
    assert set(d) == set(EVENT_COLUMNS)
    assert d["occurred_at"] == "2025-03-01T12:30:15.123456+00:00"
    assert d["received_at"] == "2025-03-01T12:30:17.123456+00:00"
    assert d["payload"]["items"][0]["product_id"] == "102"


def test_from_dict_reads_naive_timestamps_as_utc_and_payload_text() -> None:
    e = StoredEvent.from_dict(
        {
            "shop_id": "s.myshopify.com",
            "event_id": "ev-3",
            "name": "product_viewed",
            "occurred_at": "2025-03-01T12:30:15.123456",
            "received_at": "2025-03-01T12:30:17.123456",
            "client_id": "c",
            "privacy_state": "guest",
            "product_id": "101",
            "payload": '{"price": 19.5}',
        }
    )
    assert e.occurred_at == AT
    assert e.occurred_at.tzinfo is UTC
    assert e.received_at == AT + timedelta(seconds=2)
    assert e.payload == {"price": 19.5}


def test_from_dict_keeps_an_offset_and_accepts_datetimes() -> None:
    plus2 = timezone(timedelta(hours=2))
    e = StoredEvent.from_dict(
        {
            "shop_id": "s",
            "event_id": "e",
            "name": "n",
            "occurred_at": AT.astimezone(plus2),
            "received_at": None,
            "client_id": "c",
            "privacy_state": "guest",
        }
    )
    assert e.occurred_at == AT
    assert e.occurred_at.utcoffset() == timedelta(hours=2)


def test_from_dict_does_not_mutate_its_argument() -> None:
    d = json.loads(full_event().to_json())
    snapshot = json.dumps(d, sort_keys=True)
    StoredEvent.from_dict(d)
    assert json.dumps(d, sort_keys=True) == snapshot


def test_with_state() -> None:
    e = full_event().with_state("guest", None)
    assert (e.privacy_state, e.customer_id) == ("guest", None)
    assert e.event_id == "ev-1"
    assert full_event().privacy_state == "authenticated"


# --- Shop.accepts_key -------------------------------------------------------------------------


def shop(previous: str | None = None, expires: datetime | None = None) -> Shop:
    return Shop(
        shop_id="nova-demo.myshopify.com",
        ingest_key="npk_current",
        created_at=AT,
        previous_key=previous,
        previous_key_expires_at=expires,
    )


def test_current_key_is_accepted_and_others_are_not() -> None:
    s = shop()
    assert s.accepts_key("npk_current", AT)
    assert not s.accepts_key("npk_other", AT)
    assert not s.accepts_key("", AT)
    assert not s.accepts_key("npk_current ", AT)
    assert not s.accepts_key("NPK_CURRENT", AT)


def test_previous_key_accepted_before_expiry_only() -> None:
    expires = AT + timedelta(hours=24)
    s = shop("npk_old", expires)
    assert s.accepts_key("npk_old", AT)
    assert s.accepts_key("npk_old", expires - timedelta(microseconds=1))
    assert not s.accepts_key("npk_old", expires)
    assert not s.accepts_key("npk_old", expires + timedelta(seconds=1))
    assert s.accepts_key("npk_current", expires + timedelta(days=365))


def test_previous_key_without_expiry_is_not_accepted() -> None:
    assert not shop("npk_old", None).accepts_key("npk_old", AT)


def test_non_ascii_key_is_simply_wrong() -> None:
    assert not shop("npk_old", AT + timedelta(hours=1)).accepts_key("npk_☃", AT)


# --- catalog records --------------------------------------------------------------------------


def test_product_price_and_availability() -> None:
    p = Product(
        id="101",
        title="Sock",
        handle="sock",
        variants=(
            Variant(id="1", price=Decimal("12.50"), available=False),
            Variant(id="2", price=Decimal("9.99"), available=True),
        ),
    )
    assert p.price == Decimal("9.99")
    assert p.available is True
    empty = Product(id="102", title="Nothing", handle="nothing")
    assert empty.price == Decimal(0)
    assert empty.available is False


def test_variant_price_cannot_be_negative() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Variant(id="1", price=Decimal("-1"))
