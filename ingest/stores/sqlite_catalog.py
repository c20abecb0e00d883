"""Embedded backend: the catalog (products, variants, collections, stock) and the small
per-shop tables of merchandising and serving (rules, experiments, statistics, versions,
webhook deliveries)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ingest.records import Collection, Product
from ingest.stores.sqlite_db import SQLiteDatabase, transaction

PROVISIONAL_PREFIX = "handle:"


def bump(conn: sqlite3.Connection, shop_id: str, kind: str) -> None:
    conn.execute(
        "INSERT INTO shop_versions VALUES (?, ?, 1) "
        "ON CONFLICT (shop_id, kind) DO UPDATE SET version = version + 1",
        (shop_id, kind),
    )


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteCatalog:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def upsert_products(self, shop_id: str, products: Sequence[Product]) -> None:
        def _upsert(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                for p in products:
                    if not p.provisional:  # Shopify's id supersedes a CSV placeholder
                        self._delete(conn, shop_id, PROVISIONAL_PREFIX + p.handle)
                    conn.execute(
                        "INSERT OR REPLACE INTO products VALUES (?, ?, ?, ?, ?)",
                        (
                            shop_id,
                            p.id,
                            p.status,
                            _ts(p.updated_at) if p.updated_at else None,
                            p.model_dump_json(),
                        ),
                    )
                    conn.execute(
                        "DELETE FROM variants WHERE shop_id = ? AND product_id = ?", (shop_id, p.id)
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO variants "
                        "(shop_id, variant_id, product_id, inventory_item_id) VALUES (?, ?, ?, ?)",
                        [(shop_id, v.id, p.id, v.inventory_item_id) for v in p.variants],
                    )
                bump(conn, shop_id, "catalog")

        await self._db.run(_upsert)

    @staticmethod
    def _delete(conn: sqlite3.Connection, shop_id: str, product_id: str) -> int:
        n = conn.execute(
            "DELETE FROM products WHERE shop_id = ? AND product_id = ?", (shop_id, product_id)
        ).rowcount
        conn.execute(
            "DELETE FROM variants WHERE shop_id = ? AND product_id = ?", (shop_id, product_id)
        )
        return int(n)

    async def delete_product(self, shop_id: str, product_id: str) -> bool:
        def _delete(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                n = self._delete(conn, shop_id, product_id)
                bump(conn, shop_id, "catalog")
            return n > 0

        return await self._db.run(_delete)

    async def get_products(self, shop_id: str, product_ids: Sequence[str]) -> dict[str, Product]:
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self._db.run(
            lambda c: c.execute(
                f"SELECT doc FROM products WHERE shop_id = ? AND product_id IN ({marks})",
                (shop_id, *ids),
            ).fetchall()
        )
        products = (Product.model_validate_json(r[0]) for r in rows)
        return {p.id: p for p in products}

    async def list_products(self, shop_id: str) -> list[Product]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT doc FROM products WHERE shop_id = ? ORDER BY product_id", (shop_id,)
            ).fetchall()
        )
        return [Product.model_validate_json(r[0]) for r in rows]

    async def products_of_variants(
        self, shop_id: str, variant_ids: Sequence[str]
    ) -> dict[str, str]:
        ids = list(dict.fromkeys(variant_ids))
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self._db.run(
            lambda c: c.execute(
                f"SELECT variant_id, product_id FROM variants WHERE shop_id = ? "
                f"AND variant_id IN ({marks})",
                (shop_id, *ids),
            ).fetchall()
        )
        return {r[0]: r[1] for r in rows}

    async def upsert_collections(self, shop_id: str, collections: Sequence[Collection]) -> None:
        def _upsert(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO collections VALUES (?, ?, ?)",
                    [(shop_id, c.id, c.model_dump_json()) for c in collections],
                )
                bump(conn, shop_id, "catalog")

        await self._db.run(_upsert)

    async def delete_collection(self, shop_id: str, collection_id: str) -> bool:
        def _delete(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                n = conn.execute(
                    "DELETE FROM collections WHERE shop_id = ? AND collection_id = ?",
                    (shop_id, collection_id),
                ).rowcount
                bump(conn, shop_id, "catalog")
            return n > 0

        return await self._db.run(_delete)

    async def list_collections(self, shop_id: str) -> list[Collection]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT doc FROM collections WHERE shop_id = ? ORDER BY collection_id", (shop_id,)
            ).fetchall()
        )
        return [Collection.model_validate_json(r[0]) for r in rows]

    async def set_inventory_level(
        self, shop_id: str, inventory_item_id: str, location_id: str, available: int
    ) -> int:
        def _set(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO inventory_levels VALUES (?, ?, ?, ?)",
                    (shop_id, inventory_item_id, location_id, available),
                )
                row = conn.execute(
                    "SELECT sum(available) FROM inventory_levels "
                    "WHERE shop_id = ? AND inventory_item_id = ?",
                    (shop_id, inventory_item_id),
                ).fetchone()
            return int(row[0] or 0)

        return await self._db.run(_set)

    async def variant_of_inventory_item(
        self, shop_id: str, inventory_item_id: str
    ) -> tuple[str, str] | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT product_id, variant_id FROM variants "
                "WHERE shop_id = ? AND inventory_item_id = ?",
                (shop_id, inventory_item_id),
            ).fetchone()
        )
        return (row[0], row[1]) if row else None


class SQLiteVersions:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def get(self, shop_id: str) -> dict[str, int]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT kind, version FROM shop_versions WHERE shop_id = ?", (shop_id,)
            ).fetchall()
        )
        return {r[0]: int(r[1]) for r in rows}


class SQLiteMerch:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def save_rules(self, shop_id: str, doc: dict[str, Any], at: datetime) -> int:
        def _save(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                row = conn.execute(
                    "SELECT coalesce(max(version), 0) + 1 FROM rule_sets WHERE shop_id = ?",
                    (shop_id,),
                ).fetchone()
                version = int(row[0])
                conn.execute(
                    "INSERT INTO rule_sets VALUES (?, ?, ?, ?)",
                    (shop_id, version, json.dumps(doc), _ts(at)),
                )
                bump(conn, shop_id, "rules")
            return version

        return await self._db.run(_save)

    async def rules(
        self, shop_id: str, version: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        sql = "SELECT version, doc FROM rule_sets WHERE shop_id = ?"
        args: tuple[Any, ...] = (shop_id,)
        if version is None:
            sql += " ORDER BY version DESC LIMIT 1"
        else:
            sql, args = sql + " AND version = ?", (shop_id, version)
        row = await self._db.run(lambda c: c.execute(sql, args).fetchone())
        return (int(row[0]), json.loads(row[1])) if row else None

    async def rule_versions(self, shop_id: str) -> list[tuple[int, datetime]]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT version, created_at FROM rule_sets WHERE shop_id = ? ORDER BY version",
                (shop_id,),
            ).fetchall()
        )
        return [(int(r[0]), datetime.fromisoformat(r[1])) for r in rows]

    async def save_experiment(self, shop_id: str, experiment_id: str, doc: dict[str, Any]) -> None:
        def _save(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO experiments VALUES (?, ?, ?)",
                    (shop_id, experiment_id, json.dumps(doc)),
                )
                bump(conn, shop_id, "experiments")

        await self._db.run(_save)

    async def experiments(self, shop_id: str) -> list[dict[str, Any]]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT doc FROM experiments WHERE shop_id = ? ORDER BY experiment_id", (shop_id,)
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]


class SQLiteStats:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def save_stats(self, shop_id: str, kind: str, blob: bytes, at: datetime) -> None:
        def _save(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO stats_tables VALUES (?, ?, ?, ?)",
                    (shop_id, kind, _ts(at), blob),
                )
                bump(conn, shop_id, "stats")

        await self._db.run(_save)

    async def stats(self, shop_id: str, kind: str) -> tuple[datetime, bytes] | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT computed_at, doc FROM stats_tables WHERE shop_id = ? AND kind = ?",
                (shop_id, kind),
            ).fetchone()
        )
        return (datetime.fromisoformat(row[0]), bytes(row[1])) if row else None


class SQLiteDeliveries:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def seen(self, shop_id: str, webhook_id: str) -> bool:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT 1 FROM webhook_deliveries WHERE shop_id = ? AND webhook_id = ?",
                (shop_id, webhook_id),
            ).fetchone()
        )
        return row is not None

    async def record(self, shop_id: str, webhook_id: str, topic: str, at: datetime) -> None:
        await self._db.run(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO webhook_deliveries VALUES (?, ?, ?, ?)",
                (shop_id, webhook_id, topic, _ts(at)),
            )
        )
