"""SQLite exporter of training data: the same queries as PostgreSQL's, read in chunks into
pyarrow columns."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pyarrow as pa

from ingest.stores.sqlite import ts
from ingest.stores.sqlite_db import SQLiteDatabase
from ingest.stores.training_sql import (
    BASKET_COLUMNS,
    IMPRESSION_COLUMNS,
    IMPRESSION_EVENT,
    INTERACTION_COLUMNS,
    ORDER_EVENTS,
    PRODUCT_EVENTS,
    PURCHASE_EVENT,
    TRAINABLE_STATES,
    TYPES,
    kind_case,
    quoted,
    with_product_lists,
)

_CHUNK = 100_000
# SQLite has no DISTINCT ON: a bare column next to max() comes from the row holding the max.
_LINKS = (
    "(SELECT client_id, customer_id, max(linked_at) FROM identities "
    "WHERE shop_id = :shop GROUP BY client_id)"
)
_USER = "coalesce('customer:' || coalesce(e.customer_id, l.customer_id), e.client_id)"
_EPOCH = "(julianday(e.occurred_at) - 2440587.5) * 86400.0"
_FILTER = (
    "e.shop_id = :shop AND e.occurred_at >= :since AND e.occurred_at < :until "
    f"AND e.privacy_state IN ({quoted(TRAINABLE_STATES)})"
)

_INTERACTIONS = f"""
SELECT {_USER}, e.product_id, {kind_case("e.name")}, {_EPOCH}, e.ranking_id, e.device
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id
WHERE {_FILTER} AND e.name IN ({quoted(list(PRODUCT_EVENTS))}) AND e.product_id IS NOT NULL
UNION ALL
SELECT {_USER}, json_extract(item.value, '$.product_id'), 'purchase', {_EPOCH},
       e.ranking_id, e.device
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id,
     json_each(e.payload, '$.items') item
WHERE {_FILTER} AND e.name = '{PURCHASE_EVENT}'
  AND json_extract(item.value, '$.product_id') IS NOT NULL
"""

_IMPRESSIONS = f"""
SELECT e.ranking_id, {_USER}, {_EPOCH}, e.device, json_extract(e.payload, '$.products')
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id
WHERE {_FILTER} AND e.name = '{IMPRESSION_EVENT}' AND e.ranking_id IS NOT NULL
"""

_BASKETS = f"""
SELECT DISTINCT coalesce(e.order_id, e.event_id), json_extract(item.value, '$.product_id')
FROM events e, json_each(e.payload, '$.items') item
WHERE e.shop_id = :shop AND e.occurred_at >= :since AND e.occurred_at < :until
  AND e.name IN ({quoted(list(ORDER_EVENTS))})
  AND json_extract(item.value, '$.product_id') IS NOT NULL
  AND e.privacy_state IN ({quoted([*TRAINABLE_STATES, "anonymous"])})
"""


class SQLiteTrainingData:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def interactions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        return await self._query(_INTERACTIONS, INTERACTION_COLUMNS, shop_id, since, until)

    async def impressions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        raw = await self._query(_IMPRESSIONS, IMPRESSION_COLUMNS, shop_id, since, until)
        return with_product_lists(raw)

    async def baskets(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        return await self._query(_BASKETS, BASKET_COLUMNS, shop_id, since, until)

    async def count(self, shop_id: str, since: datetime, until: datetime) -> int:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT count(*) FROM events WHERE shop_id = ? AND received_at >= ? "
                "AND received_at < ?",
                (shop_id, ts(since), ts(until)),
            ).fetchone()
        )
        return int(row[0])

    async def _query(
        self, sql: str, columns: tuple[str, ...], shop_id: str, since: datetime, until: datetime
    ) -> pa.Table:
        params = {"shop": shop_id, "since": ts(since), "until": ts(until)}

        def _read(conn: sqlite3.Connection) -> pa.Table:
            cursor = conn.execute(sql, params)
            cursor.row_factory = None  # plain tuples: no sqlite3.Row per row
            batches = []
            while rows := cursor.fetchmany(_CHUNK):
                batches.append(
                    pa.record_batch(
                        [
                            pa.array([r[i] for r in rows], type=TYPES[c])
                            for i, c in enumerate(columns)
                        ],
                        names=list(columns),
                    )
                )
            schema = pa.schema([(c, TYPES[c]) for c in columns])
            return pa.Table.from_batches(batches, schema=schema)

        return await self._db.run(_read)
