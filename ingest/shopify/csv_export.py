"""Catalog import from Shopify's product CSV export.

Shopify writes one row per variant (and extra rows for extra images); product fields are on a
product's first row, later rows repeat only the Handle. The native export has no ids. Rows are
matched by Handle to products Nova already knows (their Shopify ids are kept, variants matched
by SKU, then by option values); a product Nova does not know is imported as *provisional*: its
id is `handle:<handle>` until a webhook or bulk sync brings Shopify's id, and it is never
served, because a storefront cannot resolve it. Exports made by apps that add `ID` and
`Variant ID` columns are imported with those ids directly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingest import ids
from ingest.records import Product, Variant
from ingest.shopify.products import GIFT_CARD_TYPE, money, tags, variant_available

PROVISIONAL_PREFIX = "handle:"


@dataclass
class CsvImport:
    products: list[Product]
    skipped: list[str]


def parse_csv(rows: Iterable[str], known: Mapping[str, Product]) -> CsvImport:
    """`rows`: the file's lines; `known`: the shop's current products by handle."""
    reader = csv.DictReader(_without_bom(rows))
    if reader.fieldnames is None or "Handle" not in reader.fieldnames:
        raise ValueError("not a Shopify product CSV: no Handle column")
    groups: dict[str, list[dict[str, str]]] = {}
    skipped: list[str] = []
    for line, row in enumerate(reader, start=2):
        handle = (row.get("Handle") or "").strip()
        if not handle:
            skipped.append(f"row {line}: no Handle")
            continue
        groups.setdefault(handle, []).append({k: (v or "").strip() for k, v in row.items() if k})
    products = []
    for handle, group in groups.items():
        try:
            products.append(_product(handle, group, known.get(handle)))
        except (KeyError, ValueError) as exc:
            skipped.append(f"{handle}: {exc}")
    return CsvImport(products, skipped)


def _product(handle: str, rows: list[dict[str, str]], existing: Product | None) -> Product:
    first = rows[0]
    if first.get("ID"):
        product_id, provisional = ids.product_id(first["ID"]), False
    elif existing is not None:
        product_id, provisional = existing.id, existing.provisional
    else:
        product_id, provisional = PROVISIONAL_PREFIX + handle, True
    variant_rows = [r for r in rows if r.get("Variant Price") or r.get("Option1 Value")]
    old = {v.sku: v for v in existing.variants if v.sku} if existing else {}
    old_by_options = {v.option_values: v for v in existing.variants} if existing else {}
    variants = []
    for n, row in enumerate(variant_rows, start=1):
        options = tuple(row[f"Option{i} Value"] for i in (1, 2, 3) if row.get(f"Option{i} Value"))
        match = old.get(row.get("Variant SKU") or "") or old_by_options.get(options)
        if row.get("Variant ID"):
            variant_id = ids.variant_id(row["Variant ID"])
        elif match is not None:
            variant_id = match.id
        else:
            variant_id = f"{PROVISIONAL_PREFIX}{handle}:{n}"
        tracked = row.get("Variant Inventory Tracker", "").lower() == "shopify"
        policy = (row.get("Variant Inventory Policy") or "deny").lower()
        quantity = _int(row.get("Variant Inventory Qty"))
        if quantity is None and match is not None:
            quantity = match.inventory_quantity  # newer exports keep stock per location elsewhere
        variants.append(
            Variant(
                id=variant_id,
                title=" / ".join(options) or None,
                sku=row.get("Variant SKU") or None,
                price=money(row.get("Variant Price")) or Decimal(0),
                compare_at_price=money(row.get("Variant Compare At Price")),
                available=variant_available(tracked, policy, quantity),
                inventory_quantity=quantity,
                inventory_policy=policy,
                tracked=tracked,
                inventory_item_id=match.inventory_item_id if match else None,
                option_values=options,
            )
        )
    product_type = first.get("Type") or None
    status = (first.get("Status") or "active").lower()
    published = first.get("Published", "").upper() == "TRUE"
    images = [r["Image Src"] for r in rows if r.get("Image Src")]
    return Product(
        id=product_id,
        title=first.get("Title") or (existing.title if existing else handle),
        handle=handle,
        vendor=first.get("Vendor") or None,
        product_type=product_type,
        tags=tags(first.get("Tags")),
        collections=existing.collections if existing else (),
        status=status,
        # The export says only whether the product is published, not since when.
        published_at=(existing.published_at if existing and existing.published_at else _epoch())
        if published
        else None,
        created_at=existing.created_at if existing else None,
        updated_at=existing.updated_at if existing else None,
        is_gift_card=first.get("Gift Card", "").upper() == "TRUE"
        or (product_type or "").strip().lower() == GIFT_CARD_TYPE,
        image_url=images[0] if images else (existing.image_url if existing else None),
        variants=tuple(variants),
        provisional=provisional,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        raise ValueError(f"not a quantity: {value!r}") from None


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


def _without_bom(rows: Iterable[str]) -> Iterator[str]:
    """Spreadsheet programs (and some exports) start the file with a UTF-8 byte-order mark,
    which would otherwise become part of the first column's name."""
    lines = iter(rows)
    first = next(lines, None)
    if first is None:
        return
    yield first.removeprefix("\ufeff")
    yield from lines
