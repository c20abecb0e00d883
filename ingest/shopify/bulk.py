"""Full catalog sync from a Shopify Admin GraphQL bulk operation.

A bulk operation runs BULK_PRODUCTS_QUERY and produces a JSONL file: one JSON object per line,
products first-class, and each nested connection's nodes (variants, collections) as lines of
their own pointing at their product through `__parentId`. Lines are not guaranteed to be in
any order, so the whole export is read before products are assembled.

Fetching the export (run the mutation, poll until COMPLETED, download the file) goes through
the BulkExportClient interface; ShopifyBulkClient is the implementation that talks to Shopify.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ingest import ids
from ingest.records import Collection, Product, Variant
from ingest.shopify.products import GIFT_CARD_TYPE, money, tags, variant_available

API_VERSION = "2026-01"

BULK_PRODUCTS_QUERY = """
{
  products {
    edges {
      node {
        id title handle vendor productType tags status publishedAt createdAt updatedAt
        isGiftCard
        featuredImage { url }
        variants {
          edges {
            node {
              id position title sku price compareAtPrice inventoryQuantity inventoryPolicy
              inventoryItem { id tracked }
              selectedOptions { value }
            }
          }
        }
        collections { edges { node { id handle title } } }
      }
    }
  }
}
"""


@dataclass
class Export:
    products: list[Product]
    collections: list[Collection]
    skipped: list[str]  # lines that could not be used, with the reason


def parse_export(lines: Iterable[str]) -> Export:
    products: dict[str, dict[str, Any]] = {}
    # Children keep their line numbers, so one whose product never appears can be reported.
    variants: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    memberships: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    skipped: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            node = json.loads(line)
            kind = ids.gid_kind(node.get("id"))
        except (json.JSONDecodeError, AttributeError) as exc:
            skipped.append(f"line {number}: not a JSON object: {exc}")
            continue
        parent = node.get("__parentId")
        if kind == "Product" and parent is None:
            products[node["id"]] = node
        elif kind == "ProductVariant" and parent:
            variants[parent].append((number, node))
        elif kind == "Collection" and parent:
            memberships[parent].append((number, node))
        else:
            skipped.append(f"line {number}: unexpected {kind or 'object'} node")
    for parent, children in (*variants.items(), *memberships.items()):
        if parent not in products:
            skipped += [f"line {n}: its product {parent} is not in the export" for n, _ in children]
    collections: dict[str, Collection] = {}
    out: list[Product] = []
    for gid, node in products.items():
        try:
            members = [c for _, c in memberships[gid]]
            collection_ids = [ids.shopify_id(c["id"], "Collection") for c in members]
            out.append(_product(node, [v for _, v in variants[gid]], collection_ids))
        except (KeyError, ValueError) as exc:
            skipped.append(f"product {gid}: {exc}")
            continue
        for cid, c in zip(collection_ids, members, strict=True):
            collections.setdefault(
                cid, Collection(id=cid, handle=c.get("handle") or "", title=c.get("title") or "")
            )
    return Export(out, list(collections.values()), skipped)


def _product(
    node: dict[str, Any], variant_nodes: list[dict[str, Any]], collection_ids: list[str]
) -> Product:
    variants = []
    # Lines may come in any order; Shopify's variant position restores the storefront's order.
    for v in sorted(variant_nodes, key=lambda v: int(v.get("position") or 0)):
        item = v.get("inventoryItem") or {}
        tracked = bool(item.get("tracked", True))
        policy = (v.get("inventoryPolicy") or "DENY").lower()
        quantity = v.get("inventoryQuantity")
        variants.append(
            Variant(
                id=ids.variant_id(v["id"]),
                title=v.get("title"),
                sku=v.get("sku") or None,
                price=money(v.get("price")) or Decimal(0),
                compare_at_price=money(v.get("compareAtPrice")),
                available=variant_available(tracked, policy, quantity),
                inventory_quantity=quantity,
                inventory_policy=policy,
                tracked=tracked,
                inventory_item_id=ids.shopify_id(item["id"], "InventoryItem")
                if item.get("id")
                else None,
                option_values=tuple(
                    o["value"] for o in v.get("selectedOptions") or [] if o.get("value")
                ),
            )
        )
    image = node.get("featuredImage") or {}
    product_type = node.get("productType") or None
    return Product(
        id=ids.product_id(node["id"]),
        title=node.get("title") or "",
        handle=node.get("handle") or "",
        vendor=node.get("vendor") or None,
        product_type=product_type,
        tags=tags(node.get("tags")),
        collections=tuple(dict.fromkeys(collection_ids)),
        status=(node.get("status") or "ACTIVE").lower(),
        published_at=_dt(node.get("publishedAt")),
        created_at=_dt(node.get("createdAt")),
        updated_at=_dt(node.get("updatedAt")),
        is_gift_card=bool(node.get("isGiftCard"))
        or (product_type or "").strip().lower() == GIFT_CARD_TYPE,
        image_url=image.get("url"),
        variants=tuple(variants),
    )


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class BulkExportClient(Protocol):
    def export_lines(self, shop_id: str) -> AsyncIterator[str]:
        """The JSONL lines of a finished bulk export of BULK_PRODUCTS_QUERY."""


class ShopifyBulkClient:
    """Runs the bulk operation against a shop's Admin GraphQL API with its access token."""

    def __init__(self, access_token: str, *, poll_s: float = 2.0, timeout_s: float = 3600) -> None:
        self._token = access_token
        self._poll_s = poll_s
        self._timeout_s = timeout_s

    async def export_lines(self, shop_id: str) -> AsyncIterator[str]:
        import httpx

        url = f"https://{shop_id}/admin/api/{API_VERSION}/graphql.json"
        headers = {"X-Shopify-Access-Token": self._token}
        async with httpx.AsyncClient(timeout=60) as client:
            started = await self._graphql(
                client, url, headers, _RUN, {"query": BULK_PRODUCTS_QUERY}
            )
            errors = started["bulkOperationRunQuery"]["userErrors"]
            if errors:
                raise RuntimeError(f"bulk operation refused: {errors}")
            op_id = started["bulkOperationRunQuery"]["bulkOperation"]["id"]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout_s
            while True:
                node = (await self._graphql(client, url, headers, _POLL, {"id": op_id}))["node"]
                if node["status"] == "COMPLETED":
                    break
                if node["status"] in ("FAILED", "CANCELED", "EXPIRED"):
                    raise RuntimeError(f"bulk operation {node['status']}: {node.get('errorCode')}")
                if loop.time() > deadline:
                    raise TimeoutError("bulk operation did not finish in time")
                await asyncio.sleep(self._poll_s)
            if not node.get("url"):  # an empty catalog produces no file
                return
            async with client.stream("GET", node["url"]) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    yield line

    @staticmethod
    async def _graphql(
        client: Any, url: str, headers: dict[str, str], query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        response = await client.post(
            url, headers=headers, json={"query": query, "variables": variables}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Shopify GraphQL errors: {body['errors']}")
        return body["data"]  # type: ignore[no-any-return]


_RUN = """
mutation run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

_POLL = """
query poll($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } }
}
"""
