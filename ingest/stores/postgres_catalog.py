"""PostgreSQL backend: the catalog and the small per-shop tables of merchandising and serving
(rules, experiments, statistics, versions, webhook deliveries)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingest.records import Collection, Product
from ingest.stores.postgres import PostgresDatabase, translated

PROVISIONAL_PREFIX = "handle:"
BUMP_VERSION = (
    "INSERT INTO shop_versions VALUES ($1, $2, 1) "
    "ON CONFLICT (shop_id, kind) DO UPDATE SET version = shop_versions.version + 1"
)


class PostgresCatalog:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def upsert_products(self, shop_id: str, products: Sequence[Product]) -> None:
        real = [p for p in products if not p.provisional]
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            # Shopify's id supersedes a CSV placeholder for the same handle.
            placeholders = [PROVISIONAL_PREFIX + p.handle for p in real]
            await self._delete(conn, shop_id, placeholders)
            await conn.executemany(
                "INSERT INTO products VALUES ($1, $2, $3, $4, $5::jsonb) "
                "ON CONFLICT (shop_id, product_id) DO UPDATE "
                "SET status = $3, updated_at = $4, doc = $5::jsonb",
                [(shop_id, p.id, p.status, p.updated_at, p.model_dump_json()) for p in products],
            )
            await conn.execute(
                "DELETE FROM variants WHERE shop_id = $1 AND product_id = ANY($2::text[])",
                shop_id,
                [p.id for p in products],
            )
            await conn.executemany(
                "INSERT INTO variants (shop_id, variant_id, product_id, inventory_item_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (shop_id, variant_id) "
                "DO UPDATE SET product_id = $3, inventory_item_id = $4",
                [(shop_id, v.id, p.id, v.inventory_item_id) for p in products for v in p.variants],
            )
            await conn.execute(BUMP_VERSION, shop_id, "catalog")

    @staticmethod
    async def _delete(conn: Any, shop_id: str, product_ids: list[str]) -> bool:
        status = await conn.execute(
            "DELETE FROM products WHERE shop_id = $1 AND product_id = ANY($2::text[])",
            shop_id,
            product_ids,
        )
        await conn.execute(
            "DELETE FROM variants WHERE shop_id = $1 AND product_id = ANY($2::text[])",
            shop_id,
            product_ids,
        )
        return bool(status != "DELETE 0")

    async def delete_product(self, shop_id: str, product_id: str) -> bool:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            deleted = await self._delete(conn, shop_id, [product_id])
            await conn.execute(BUMP_VERSION, shop_id, "catalog")
        return deleted

    async def get_products(self, shop_id: str, product_ids: Sequence[str]) -> dict[str, Product]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT doc::text FROM products "
                "WHERE shop_id = $1 AND product_id = ANY($2::text[])",
                shop_id,
                list(product_ids),
            )
        products = (Product.model_validate_json(r[0]) for r in rows)
        return {p.id: p for p in products}

    async def list_products(self, shop_id: str) -> list[Product]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT doc::text FROM products WHERE shop_id = $1 ORDER BY product_id", shop_id
            )
        return [Product.model_validate_json(r[0]) for r in rows]

    async def products_of_variants(
        self, shop_id: str, variant_ids: Sequence[str]
    ) -> dict[str, str]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT variant_id, product_id FROM variants "
                "WHERE shop_id = $1 AND variant_id = ANY($2::text[])",
                shop_id,
                list(variant_ids),
            )
        return {r[0]: r[1] for r in rows}

    async def upsert_collections(self, shop_id: str, collections: Sequence[Collection]) -> None:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO collections VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (shop_id, collection_id) DO UPDATE SET doc = $3::jsonb",
                [(shop_id, c.id, c.model_dump_json()) for c in collections],
            )
            await conn.execute(BUMP_VERSION, shop_id, "catalog")

    async def delete_collection(self, shop_id: str, collection_id: str) -> bool:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM collections WHERE shop_id = $1 AND collection_id = $2",
                shop_id,
                collection_id,
            )
            await conn.execute(BUMP_VERSION, shop_id, "catalog")
        return bool(status != "DELETE 0")

    async def list_collections(self, shop_id: str) -> list[Collection]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT doc::text FROM collections WHERE shop_id = $1 ORDER BY collection_id",
                shop_id,
            )
        return [Collection.model_validate_json(r[0]) for r in rows]

    async def set_inventory_level(
        self, shop_id: str, inventory_item_id: str, location_id: str, available: int
    ) -> int:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO inventory_levels VALUES ($1, $2, $3, $4) ON CONFLICT "
                "(shop_id, inventory_item_id, location_id) DO UPDATE SET available = $4",
                shop_id,
                inventory_item_id,
                location_id,
                available,
            )
            total = await conn.fetchval(
                "SELECT sum(available) FROM inventory_levels "
                "WHERE shop_id = $1 AND inventory_item_id = $2",
                shop_id,
                inventory_item_id,
            )
        return int(total or 0)

    async def variant_of_inventory_item(
        self, shop_id: str, inventory_item_id: str
    ) -> tuple[str, str] | None:
        async with translated():
            row = await self._db.pool.fetchrow(
                "SELECT product_id, variant_id FROM variants "
                "WHERE shop_id = $1 AND inventory_item_id = $2",
                shop_id,
                inventory_item_id,
            )
        return (row[0], row[1]) if row else None


class PostgresVersions:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def get(self, shop_id: str) -> dict[str, int]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT kind, version FROM shop_versions WHERE shop_id = $1", shop_id
            )
        return {r[0]: int(r[1]) for r in rows}


class PostgresMerch:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def save_rules(self, shop_id: str, doc: dict[str, Any], at: datetime) -> int:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            # Serialise version numbering per shop.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "rules:" + shop_id)
            version = await conn.fetchval(
                "SELECT coalesce(max(version), 0) + 1 FROM rule_sets WHERE shop_id = $1", shop_id
            )
            await conn.execute(
                "INSERT INTO rule_sets VALUES ($1, $2, $3::jsonb, $4)",
                shop_id,
                version,
                json.dumps(doc),
                at,
            )
            await conn.execute(BUMP_VERSION, shop_id, "rules")
        return int(version)

    async def rules(
        self, shop_id: str, version: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        async with translated():
            if version is None:
                row = await self._db.pool.fetchrow(
                    "SELECT version, doc::text FROM rule_sets WHERE shop_id = $1 "
                    "ORDER BY version DESC LIMIT 1",
                    shop_id,
                )
            else:
                row = await self._db.pool.fetchrow(
                    "SELECT version, doc::text FROM rule_sets WHERE shop_id = $1 AND version = $2",
                    shop_id,
                    version,
                )
        return (int(row[0]), json.loads(row[1])) if row else None

    async def rule_versions(self, shop_id: str) -> list[tuple[int, datetime]]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT version, created_at FROM rule_sets WHERE shop_id = $1 ORDER BY version",
                shop_id,
            )
        return [(int(r[0]), r[1]) for r in rows]

    async def save_experiment(self, shop_id: str, experiment_id: str, doc: dict[str, Any]) -> None:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO experiments VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (shop_id, experiment_id) DO UPDATE SET doc = $3::jsonb",
                shop_id,
                experiment_id,
                json.dumps(doc),
            )
            await conn.execute(BUMP_VERSION, shop_id, "experiments")

    async def experiments(self, shop_id: str) -> list[dict[str, Any]]:
        async with translated():
            rows = await self._db.pool.fetch(
                "SELECT doc::text FROM experiments WHERE shop_id = $1 ORDER BY experiment_id",
                shop_id,
            )
        return [json.loads(r[0]) for r in rows]


class PostgresStats:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def save_stats(self, shop_id: str, kind: str, blob: bytes, at: datetime) -> None:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO stats_tables VALUES ($1, $2, $3, $4) ON CONFLICT (shop_id, kind) "
                "DO UPDATE SET computed_at = $3, doc = $4",
                shop_id,
                kind,
                at,
                blob,
            )
            await conn.execute(BUMP_VERSION, shop_id, "stats")

    async def stats(self, shop_id: str, kind: str) -> tuple[datetime, bytes] | None:
        async with translated():
            row = await self._db.pool.fetchrow(
                "SELECT computed_at, doc FROM stats_tables WHERE shop_id = $1 AND kind = $2",
                shop_id,
                kind,
            )
        return (row[0], bytes(row[1])) if row else None


class PostgresDeliveries:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def seen(self, shop_id: str, webhook_id: str) -> bool:
        async with translated():
            found = await self._db.pool.fetchval(
                "SELECT 1 FROM webhook_deliveries WHERE shop_id = $1 AND webhook_id = $2",
                shop_id,
                webhook_id,
            )
        return found is not None

    async def record(self, shop_id: str, webhook_id: str, topic: str, at: datetime) -> None:
        async with translated():
            await self._db.pool.execute(
                "INSERT INTO webhook_deliveries VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                shop_id,
                webhook_id,
                topic,
                at,
            )
