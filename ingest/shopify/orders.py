"""orders/create webhooks as anonymous baskets for co-purchase statistics.

An order arrives server-to-server, without the shopper's consent decision, so Nova keeps only
what an aggregate needs: the order id (for deduplication against the pixel's
checkout_completed), the line items, total, currency and country code. No customer, no client
id, no contact details or addresses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest import ids
from ingest.records import StoredEvent
from ingest.shopify.products import money

ORDER_EVENT = "order_created"
ANONYMOUS = "anonymous"


def order_event(shop_id: str, payload: dict[str, Any]) -> StoredEvent:
    order_id = ids.shopify_id(payload["id"], "Order")
    items = []
    for line in payload.get("line_items") or []:
        if not line.get("product_id") or line.get("gift_card"):
            continue  # custom items and gift cards are not catalog products to recommend
        item: dict[str, Any] = {
            "product_id": ids.product_id(line["product_id"]),
            "quantity": int(line.get("quantity") or 1),
        }
        if line.get("variant_id"):
            item["variant_id"] = ids.variant_id(line["variant_id"])
        price = money(line.get("price"))
        if price is not None:
            item["price"] = float(price)
        items.append(item)
    created = payload.get("created_at")
    occurred = datetime.fromisoformat(created) if isinstance(created, str) else datetime.now(UTC)
    payload_out: dict[str, Any] = {"items": items, "source": "webhook"}
    total = money(payload.get("total_price"))
    if total is not None:
        payload_out["total"] = float(total)
    if payload.get("currency"):
        payload_out["currency"] = str(payload["currency"])[:8]
    address = payload.get("shipping_address") or payload.get("billing_address") or {}
    country = address.get("country_code") if isinstance(address, dict) else None
    return StoredEvent(
        shop_id=shop_id,
        event_id=f"order:{order_id}",
        name=ORDER_EVENT,
        occurred_at=occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC),
        client_id="",
        privacy_state=ANONYMOUS,
        order_id=order_id,
        country=str(country).upper()[:2] if country else None,
        payload=payload_out,
    )
