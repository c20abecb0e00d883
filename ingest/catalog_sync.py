"""Full catalog sync: a shop's whole catalog from a Shopify bulk-operation JSONL export (a file,
or fetched through a BulkExportClient) or from Shopify's product CSV export.

Webhooks keep the catalog current one change at a time; a full sync is how a shop's catalog
arrives first and how a missed webhook is repaired. Both paths share the rules of
ingest/catalog.py: an older copy of a product never replaces a newer one, and a smart
collection's members follow its rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ingest.catalog import is_stale, with_memberships
from ingest.records import Collection, Product
from ingest.shopify.bulk import BulkExportClient, parse_export
from ingest.shopify.csv_export import parse_csv
from ingest.stores.base import Stores


@dataclass
class SyncReport:
    products: int = 0  # products written
    collections: int = 0  # collections written
    stale: int = 0  # products not written: Nova holds a newer version (from a webhook)
    # Products Nova holds that the export did not mention: deleted on Shopify while a webhook
    # was missed, or left out of a partial export. Reported, never deleted on this evidence.
    not_in_export: int = 0
    skipped: list[str] = field(default_factory=list)  # lines/rows that could not be used

    def summary(self) -> str:
        return (
            f"imported {self.products} products and {self.collections} collections; "
            f"{self.stale} stale, {self.not_in_export} in Nova but not in the export, "
            f"{len(self.skipped)} skipped"
        )


async def import_bulk(stores: Stores, shop_id: str, lines: Iterable[str]) -> SyncReport:
    """A bulk-operation JSONL export: products with Shopify's own collection memberships."""
    export = parse_export(lines)
    report = SyncReport(skipped=list(export.skipped))
    known = {c.id: c for c in await stores.catalog.list_collections(shop_id)}
    collections = [_merge_collection(c, known.get(c.id)) for c in export.collections]
    if collections:
        await stores.catalog.upsert_collections(shop_id, collections)
    report.collections = len(collections)
    # Memberships come from Shopify, smart ones included: more authoritative than Nova's own
    # evaluation of the rules, so products are written as exported.
    await _write_products(stores, shop_id, export.products, report)
    return report


async def import_bulk_from(stores: Stores, shop_id: str, client: BulkExportClient) -> SyncReport:
    """Run a bulk export through the client (Shopify's Admin API in production) and import it."""
    lines = [line async for line in client.export_lines(shop_id)]
    return await import_bulk(stores, shop_id, lines)


async def import_csv(stores: Stores, shop_id: str, rows: Iterable[str]) -> SyncReport:
    """Shopify's product CSV export. It carries no collections: custom memberships of known
    products are kept, smart ones follow the rules Nova knows."""
    current = await stores.catalog.list_products(shop_id)
    parsed = parse_csv(rows, {p.handle: p for p in current})
    smart = [c for c in await stores.catalog.list_collections(shop_id) if c.kind == "smart"]
    products = [with_memberships(p, p.collections, smart) for p in parsed.products]
    report = SyncReport(skipped=list(parsed.skipped))
    await _write_products(stores, shop_id, products, report, current=current)
    return report


def _merge_collection(exported: Collection, stored: Collection | None) -> Collection:
    """An export names a collection by id, handle and title only; what Nova knows beyond that
    (a smart collection's rules, its kind, whether it is published) stays."""
    if stored is None:
        return exported
    return stored.model_copy(
        update={"handle": exported.handle or stored.handle, "title": exported.title or stored.title}
    )


async def _write_products(
    stores: Stores,
    shop_id: str,
    products: Sequence[Product],
    report: SyncReport,
    current: Sequence[Product] | None = None,
) -> None:
    if current is None:
        current = await stores.catalog.list_products(shop_id)
    stored = {p.id: p for p in current}
    fresh = []
    for p in products:
        old = stored.get(p.id)
        if old is not None and is_stale(p.updated_at, old.updated_at):
            report.stale += 1
        else:
            fresh.append(p)
    if fresh:
        await stores.catalog.upsert_products(shop_id, fresh)
    report.products = len(fresh)
    exported_ids = {p.id for p in products}
    exported_handles = {p.handle for p in products}
    # A provisional product (CSV, no Shopify id) is accounted for by its handle.
    report.not_in_export = sum(
        1 for p in current if p.id not in exported_ids and p.handle not in exported_handles
    )
