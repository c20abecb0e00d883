"""PostgreSQL exporter of training data: COPY ... TO STDOUT (CSV) parsed by pyarrow, so ten
million rows cost one streamed query and a columnar parse, not ten million Python tuples."""

from __future__ import annotations

import tempfile
from datetime import datetime

import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.stores.postgres import PostgresDatabase, translated
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
    empty,
    kind_case,
    quoted,
    with_product_lists,
)

# The customer each client id was last linked to.
_LINKS = (
    "(SELECT DISTINCT ON (client_id) client_id, customer_id FROM identities "
    "WHERE shop_id = $1 ORDER BY client_id, linked_at DESC)"
)
_USER = "coalesce('customer:' || coalesce(e.customer_id, l.customer_id), e.client_id)"
_FILTER = (
    f"e.shop_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3 "
    f"AND e.privacy_state IN ({quoted(TRAINABLE_STATES)})"
)

_INTERACTIONS = f"""
SELECT {_USER}, e.product_id, {kind_case("e.name")}, extract(epoch FROM e.occurred_at),
       e.ranking_id, e.device
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id
WHERE {_FILTER} AND e.name IN ({quoted(list(PRODUCT_EVENTS))}) AND e.product_id IS NOT NULL
UNION ALL
SELECT {_USER}, item->>'product_id', 'purchase', extract(epoch FROM e.occurred_at),
       e.ranking_id, e.device
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id,
     jsonb_array_elements(e.payload->'items') item
WHERE {_FILTER} AND e.name = '{PURCHASE_EVENT}' AND item->>'product_id' IS NOT NULL
"""

_IMPRESSIONS = f"""
SELECT e.ranking_id, {_USER}, extract(epoch FROM e.occurred_at), e.device,
       (e.payload->'products')::text
FROM events e LEFT JOIN {_LINKS} l ON l.client_id = e.client_id
WHERE {_FILTER} AND e.name = '{IMPRESSION_EVENT}' AND e.ranking_id IS NOT NULL
"""

# Orders: anonymous webhook orders count (no visitor in them); a checkout_completed of the same
# order shares the basket id, so the order is counted once.
_BASKETS = f"""
SELECT DISTINCT coalesce(e.order_id, e.event_id), item->>'product_id'
FROM events e, jsonb_array_elements(e.payload->'items') item
WHERE e.shop_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
  AND e.name IN ({quoted(list(ORDER_EVENTS))}) AND item->>'product_id' IS NOT NULL
  AND e.privacy_state IN ({quoted([*TRAINABLE_STATES, "anonymous"])})
"""


class PostgresTrainingData:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def interactions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        return await self._copy(_INTERACTIONS, INTERACTION_COLUMNS, shop_id, since, until)

    async def impressions(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        raw = await self._copy(_IMPRESSIONS, IMPRESSION_COLUMNS, shop_id, since, until)
        return with_product_lists(raw)

    async def baskets(self, shop_id: str, since: datetime, until: datetime) -> pa.Table:
        return await self._copy(_BASKETS, BASKET_COLUMNS, shop_id, since, until)

    async def count(self, shop_id: str, since: datetime, until: datetime) -> int:
        async with translated():
            return int(
                await self._db.pool.fetchval(
                    "SELECT count(*) FROM events WHERE shop_id = $1 AND received_at >= $2 "
                    "AND received_at < $3",
                    shop_id,
                    since,
                    until,
                )
            )

    async def _copy(
        self, sql: str, columns: tuple[str, ...], shop_id: str, since: datetime, until: datetime
    ) -> pa.Table:
        # Spooled to a temporary file past 64 MB: a big shop's export does not sit in memory
        # twice (bytes and columns) while pyarrow parses it.
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            async with translated(), self._db.pool.acquire() as conn:
                await conn.copy_from_query(sql, shop_id, since, until, output=spool, format="csv")
            if spool.tell() == 0:
                return empty(columns)
            spool.seek(0)
            return pacsv.read_csv(
                spool,
                read_options=pacsv.ReadOptions(column_names=list(columns)),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: TYPES[c] for c in columns},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
