"""The simulated storefront (deployments/simulate.py) as Shopify would report it to Nova: REST
webhook payloads for its products, collections and orders, and the bulk-operation JSONL export
of its catalog. `make demo` and the tests load the catalog through these, the paths a real
shop's catalog takes, instead of writing it to the stores directly.

Collections: the per-type collections and "sale" are smart collections (rules Nova evaluates
as products arrive); "all" and "new-arrivals" are custom collections, whose members only
Shopify knows: they arrive with the bulk export, as they would for a real shop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployments.simulate import PRODUCT_TYPES, Catalog
from ingest.records import Product


@dataclass(frozen=True)
class CollectionSpec:
    id: str
    handle: str
    title: str
    rules: tuple[tuple[str, str, str], ...] = ()  # empty: a custom collection


def collection_specs(catalog: Catalog) -> list[CollectionSpec]:
    by_handle = {t.lower().replace(" ", "-") + "s": t for t in PRODUCT_TYPES}
    specs = []
    for handle, cid in catalog.collections.items():
        if handle in by_handle:
            ptype = by_handle[handle]
            specs.append(CollectionSpec(cid, handle, ptype + "s", (("type", "equals", ptype),)))
        elif handle == "sale":
            specs.append(CollectionSpec(cid, handle, "Sale", (("tag", "equals", "sale"),)))
        else:
            specs.append(CollectionSpec(cid, handle, handle.replace("-", " ").capitalize()))
    return specs


def collection_payload(spec: CollectionSpec, at: datetime) -> dict[str, Any]:
    """A collections/create body: REST's SmartCollection shape (with rules and disjunctive) or
    CustomCollection shape."""
    payload: dict[str, Any] = {
        "id": int(spec.id),
        "admin_graphql_api_id": f"gid://shopify/Collection/{spec.id}",
        "handle": spec.handle,
        "title": spec.title,
        "body_html": "",
        "published_at": _ts(at),
        "updated_at": _ts(at),
        "sort_order": "best-selling",
        "template_suffix": None,
        "published_scope": "web",
    }
    if spec.rules:
        payload["disjunctive"] = False
        payload["rules"] = [
            {"column": column, "relation": relation, "condition": condition}
            for column, relation, condition in spec.rules
        ]
    return payload


def product_payload(p: Product) -> dict[str, Any]:
    """A products/create body in Shopify's REST Product shape: numeric ids, tags as one
    comma-separated string, prices as strings, stock per variant."""
    pid = int(p.id)
    image = (
        {"id": pid, "product_id": pid, "position": 1, "alt": p.title, "src": p.image_url}
        if p.image_url
        else None
    )
    return {
        "id": pid,
        "admin_graphql_api_id": f"gid://shopify/Product/{p.id}",
        "title": p.title,
        "body_html": f"<p>{p.title}</p>",
        "handle": p.handle,
        "vendor": p.vendor,
        "product_type": p.product_type,
        "tags": ", ".join(p.tags),
        "status": p.status,
        "published_at": _ts(p.published_at),
        "published_scope": "global",
        "created_at": _ts(p.created_at),
        "updated_at": _ts(p.updated_at),
        "template_suffix": None,
        "options": [
            {"name": "Size", "position": 1, "values": [v.title for v in p.variants]},
        ],
        "variants": [
            {
                "id": int(v.id),
                "admin_graphql_api_id": f"gid://shopify/ProductVariant/{v.id}",
                "product_id": pid,
                "title": v.title,
                "position": n,
                "sku": v.sku,
                "price": str(v.price),
                "compare_at_price": str(v.compare_at_price) if v.compare_at_price else None,
                "option1": v.option_values[0] if v.option_values else None,
                "option2": None,
                "option3": None,
                "taxable": True,
                "barcode": None,
                "inventory_item_id": int(v.inventory_item_id) if v.inventory_item_id else None,
                "inventory_management": "shopify" if v.tracked else None,
                "inventory_policy": v.inventory_policy,
                "inventory_quantity": v.inventory_quantity,
                "old_inventory_quantity": v.inventory_quantity,
                "created_at": _ts(p.created_at),
                "updated_at": _ts(p.updated_at),
            }
            for n, v in enumerate(p.variants, start=1)
        ],
        "images": [image] if image else [],
        "image": image,
    }


def bulk_export_lines(catalog: Catalog) -> Iterator[str]:
    """The JSONL a bulk operation of ingest.shopify.bulk.BULK_PRODUCTS_QUERY produces for this
    catalog: a product line, then its variants and collection memberships as lines of their own
    pointing at it through __parentId."""
    specs = {s.id: s for s in collection_specs(catalog)}
    for p in catalog.products:
        gid = f"gid://shopify/Product/{p.id}"
        yield _line(
            {
                "id": gid,
                "title": p.title,
                "handle": p.handle,
                "vendor": p.vendor,
                "productType": p.product_type,
                "tags": list(p.tags),
                "status": p.status.upper(),
                "publishedAt": _ts(p.published_at),
                "createdAt": _ts(p.created_at),
                "updatedAt": _ts(p.updated_at),
                "isGiftCard": p.is_gift_card,
                "featuredImage": {"url": p.image_url} if p.image_url else None,
            }
        )
        for n, v in enumerate(p.variants, start=1):
            yield _line(
                {
                    "id": f"gid://shopify/ProductVariant/{v.id}",
                    "position": n,
                    "title": v.title,
                    "sku": v.sku,
                    "price": str(v.price),
                    "compareAtPrice": str(v.compare_at_price) if v.compare_at_price else None,
                    "inventoryQuantity": v.inventory_quantity,
                    "inventoryPolicy": v.inventory_policy.upper(),
                    "inventoryItem": {
                        "id": f"gid://shopify/InventoryItem/{v.inventory_item_id}",
                        "tracked": v.tracked,
                    },
                    "selectedOptions": [{"value": o} for o in v.option_values],
                    "__parentId": gid,
                }
            )
        for cid in p.collections:
            spec = specs[cid]
            yield _line(
                {
                    "id": f"gid://shopify/Collection/{cid}",
                    "handle": spec.handle,
                    "title": spec.title,
                    "__parentId": gid,
                }
            )


def order_payloads(batches: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """An orders/create body for every completed checkout in the shoppers' pixel batches.

    Shopify sends an order server-to-server whatever the shopper consented to, with the
    customer's contact details and addresses; Nova must keep none of them.
    """
    for batch in batches:
        for event in batch["events"]:
            if event["name"] == "checkout_completed":
                yield _order(event["data"]["checkout"], event["timestamp"])


def _order(checkout: dict[str, Any], timestamp: str) -> dict[str, Any]:
    order_id = int(checkout["order"]["id"].rsplit("/", 1)[1])
    address = checkout["shippingAddress"]
    rest_address = {
        "first_name": address["firstName"],
        "last_name": address["lastName"],
        "address1": address["address1"],
        "city": address["city"],
        "zip": address["zip"],
        "country_code": address["countryCode"],
        "phone": address["phone"],
    }
    customer = checkout["order"].get("customer") or {}
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id % 100_000}",
        "created_at": timestamp.replace("Z", "+00:00"),
        "currency": checkout["currencyCode"],
        "total_price": f"{checkout['totalPrice']['amount']:.2f}",
        "email": checkout["email"],
        "phone": checkout["phone"],
        "browser_ip": "203.0.113.7",
        "billing_address": rest_address,
        "shipping_address": rest_address,
        "customer": {"id": int(customer["id"]), "email": checkout["email"]}
        if customer.get("id")
        else None,
        "line_items": [
            {
                "id": order_id * 10 + n,
                "product_id": int(item["variant"]["product"]["id"].rsplit("/", 1)[1]),
                "variant_id": int(item["variant"]["id"].rsplit("/", 1)[1]),
                "title": item["title"],
                "quantity": item["quantity"],
                "price": f"{item['finalLinePrice']['amount'] / item['quantity']:.2f}",
                "sku": item["variant"]["sku"],
                "gift_card": False,
            }
            for n, item in enumerate(checkout["lineItems"])
        ],
    }


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _line(node: dict[str, Any]) -> str:
    return json.dumps(node, separators=(",", ":")) + "\n"
