"""PostgreSQL backend: shops, the partitioned event store (written with COPY), the catalog."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from ingest import migrate
from ingest.errors import ShopExists, StoreUnavailable
from ingest.records import EVENT_COLUMNS, Shop, StoredEvent

_PARTITION_LOCK_KEY = 0x4E6F7650
# Failures that mean "the server cannot be used right now", as opposed to a bug in a query.
_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InsufficientPrivilegeError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.AdminShutdownError,
    TimeoutError,
)

_INSERT_FRESH = f"""
WITH fresh AS (
    INSERT INTO event_ids (shop_id, event_id, received_at)
    SELECT DISTINCT ON (shop_id, event_id) shop_id, event_id, received_at
    FROM incoming ORDER BY shop_id, event_id, received_at
    ON CONFLICT DO NOTHING
    RETURNING shop_id, event_id
)
INSERT INTO events ({", ".join(EVENT_COLUMNS)})
SELECT DISTINCT ON (i.shop_id, i.event_id) {", ".join("i." + c for c in EVENT_COLUMNS)}
FROM incoming i JOIN fresh USING (shop_id, event_id)
ORDER BY i.shop_id, i.event_id, i.received_at
"""

_BASKET_EVENTS = {"view": "product_viewed", "cart": "product_added_to_cart"}

_LINK_IDENTITIES = """
INSERT INTO identities (shop_id, client_id, customer_id, linked_at)
SELECT shop_id, client_id, customer_id, min(occurred_at) FROM incoming
WHERE customer_id IS NOT NULL GROUP BY shop_id, client_id, customer_id
ON CONFLICT (shop_id, client_id, customer_id)
DO UPDATE SET linked_at = least(identities.linked_at, excluded.linked_at)
"""


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable("postgres", exc) from exc


class PostgresDatabase:
    def __init__(self, url: str, *, max_connections: int = 4) -> None:
        self._url = url
        self._max = max_connections
        self.pool: Any = None
        self._partitions: set[date] = set()

    async def open(self, *, migrate_schema: bool) -> None:
        """min_size=0: creating the pool needs no server, so a process can start while
        PostgreSQL is down and work once it is back."""
        self.pool = await asyncpg.create_pool(
            self._url, min_size=0, max_size=self._max, timeout=5, command_timeout=60
        )
        if migrate_schema:
            await self.migrate()

    async def migrate(self) -> list[int]:
        async with translated(), self.pool.acquire() as conn:
            applied: list[int] = await migrate.apply_postgres(conn)
            now = datetime.now(UTC).date()
            await self._ensure_partitions(conn, {_month(now), _next_month(_month(now))})
        return applied

    async def ping(self) -> None:
        async with translated(), self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def _ensure_partitions(self, conn: Any, months: set[date]) -> None:
        missing = months - self._partitions
        if not missing:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK_KEY)
            for month in sorted(missing):
                name = f"events_y{month.year:04d}m{month.month:02d}"
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES "
                    f"FROM ('{month.isoformat()}') TO ('{_next_month(month).isoformat()}')"
                )
        self._partitions |= missing


def _month(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


class PostgresShops:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def create_shop(self, shop: Shop) -> None:
        async with translated():
            try:
                await self._db.pool.execute(
                    f"INSERT INTO shops ({_SHOP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    *_shop_row(shop),
                )
            except asyncpg.UniqueViolationError:
                raise ShopExists(shop.shop_id) from None

    async def save_shop(self, shop: Shop) -> None:
        async with translated():
            await self._db.pool.execute(
                f"INSERT INTO shops ({_SHOP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "ON CONFLICT (shop_id) DO UPDATE SET ingest_key = $2, previous_key = $3, "
                "previous_key_expires_at = $4, require_consent = $5, currency = $7, "
                "uninstalled_at = $8",
                *_shop_row(shop),
            )

    async def get_shop(self, shop_id: str) -> Shop | None:
        async with translated():
            row = await self._db.pool.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)
        return Shop(**dict(row)) if row else None

    async def list_shops(self) -> list[Shop]:
        async with translated():
            rows = await self._db.pool.fetch("SELECT * FROM shops ORDER BY shop_id")
        return [Shop(**dict(r)) for r in rows]


_SHOP_COLUMNS = (
    "shop_id, ingest_key, previous_key, previous_key_expires_at, require_consent, created_at, "
    "currency, uninstalled_at"
)


def _shop_row(s: Shop) -> tuple[Any, ...]:
    return (
        s.shop_id,
        s.ingest_key,
        s.previous_key,
        s.previous_key_expires_at,
        s.require_consent,
        s.created_at,
        s.currency,
        s.uninstalled_at,
    )


class PostgresEvents:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def write(self, events: Sequence[StoredEvent]) -> int:
        if not events:
            return 0
        now = datetime.now(UTC)
        rows = [_event_record(e, now) for e in events]
        months = {_month(r[4].date()) for r in rows}
        async with translated(), self._db.pool.acquire() as conn:
            await self._db._ensure_partitions(conn, months)
            async with conn.transaction():
                await conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS incoming (LIKE events) ON COMMIT DELETE ROWS"
                )
                await conn.copy_records_to_table("incoming", records=rows, columns=EVENT_COLUMNS)
                status = await conn.execute(_INSERT_FRESH)
                await conn.execute(_LINK_IDENTITIES)
        return int(status.split()[-1])

    async def count(self, shop_id: str, name: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM events WHERE shop_id = $1", [shop_id]
        if name is not None:
            sql, args = sql + " AND name = $2", [*args, name]
        async with translated():
            return int(await self._db.pool.fetchval(sql, *args))

    async def read(self, shop_id: str, *, limit: int = 10_000) -> list[StoredEvent]:
        cols = ", ".join(f"e.{c}" for c in EVENT_COLUMNS if c != "customer_id")
        sql = (
            f"SELECT {cols}, coalesce(e.customer_id, (SELECT i.customer_id FROM identities i "
            "WHERE i.shop_id = e.shop_id AND i.client_id = e.client_id "
            "AND i.linked_at <= e.occurred_at ORDER BY i.linked_at DESC LIMIT 1)) AS customer_id "
            "FROM events e WHERE e.shop_id = $1 ORDER BY e.occurred_at, e.event_id LIMIT $2"
        )
        async with translated():
            rows = await self._db.pool.fetch(sql, shop_id, limit)
        return [StoredEvent.from_dict(dict(r)) for r in rows]

    async def erase_visitor(self, shop_id: str, client_id: str) -> int:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM events WHERE shop_id = $1 AND client_id = $2", shop_id, client_id
            )
            await conn.execute(
                "DELETE FROM identities WHERE shop_id = $1 AND client_id = $2", shop_id, client_id
            )
        return int(status.split()[-1])

    async def basket_items(self, shop_id: str, kind: str, since: datetime) -> list[tuple[str, str]]:
        if kind == "purchase":
            sql = (
                "SELECT coalesce(e.order_id, e.event_id), item->>'product_id' FROM events e, "
                "jsonb_array_elements(e.payload->'items') item WHERE e.shop_id = $1 "
                "AND e.name IN ('checkout_completed', 'order_created') AND e.occurred_at >= $2 "
                "AND item->>'product_id' IS NOT NULL"
            )
            args: tuple[Any, ...] = (shop_id, since)
        else:
            sql = (
                "SELECT client_id || ':' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
                "product_id FROM events WHERE shop_id = $1 AND name = $2 AND occurred_at >= $3 "
                "AND product_id IS NOT NULL"
            )
            args = (shop_id, _BASKET_EVENTS[kind], since)
        async with translated():
            rows = await self._db.pool.fetch(sql, *args)
        return [(r[0], r[1]) for r in rows]

    async def customer_of(self, shop_id: str, client_id: str) -> str | None:
        async with translated():
            value = await self._db.pool.fetchval(
                "SELECT customer_id FROM identities WHERE shop_id = $1 AND client_id = $2 "
                "ORDER BY linked_at DESC LIMIT 1",
                shop_id,
                client_id,
            )
        return str(value) if value is not None else None


def _event_record(e: StoredEvent, now: datetime) -> tuple[Any, ...]:
    return (
        e.shop_id,
        e.event_id,
        e.name,
        e.occurred_at,
        e.received_at or now,
        e.client_id,
        e.customer_id,
        e.privacy_state,
        e.product_id,
        e.variant_id,
        e.quantity,
        e.order_id,
        e.ranking_id,
        e.device,
        e.country,
        json.dumps(e.payload, separators=(",", ":")),
    )
