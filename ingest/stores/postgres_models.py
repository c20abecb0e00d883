"""PostgreSQL backend: the model registry's rows, version sequences and pins."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ingest.errors import AlreadyExists, NotFound
from ingest.records import ModelRow
from ingest.stores.postgres import PostgresDatabase, translated
from ingest.stores.postgres_catalog import BUMP_VERSION

_COLUMNS = (
    "shop_id, kind, version, status, config::text, data_window::text, metrics::text, "
    "artifact_uri, created_at, reason"
)
_NEXT = (
    "INSERT INTO model_sequences VALUES ($1, $2, 1) ON CONFLICT (shop_id, kind) "
    "DO UPDATE SET last_version = model_sequences.last_version + 1 RETURNING last_version"
)
# Pins only what is published, in the same statement that checks it.
_PIN = (
    "INSERT INTO model_pins SELECT shop_id, kind, version FROM models "
    "WHERE shop_id = $1 AND kind = $2 AND version = $3 AND status = 'published' "
    "ON CONFLICT (shop_id, kind) DO UPDATE SET version = excluded.version"
)


class PostgresModels:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def next_version(self, shop_id: str, kind: str) -> int:
        async with translated():
            return int(await self._db.pool.fetchval(_NEXT, shop_id, kind))

    async def add(self, row: ModelRow) -> None:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO models VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, "
                    "$8, $9, $10)",
                    row.shop_id,
                    row.kind,
                    row.version,
                    row.status,
                    _json(row.config),
                    _json(row.data_window),
                    _json(row.metrics),
                    row.artifact_uri,
                    row.created_at,
                    row.reason,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"{row.kind} v{row.version} of {row.shop_id} exists") from None
            if row.published:
                await conn.execute(BUMP_VERSION, row.shop_id, "models")

    async def rows(self, shop_id: str, kind: str | None = None) -> list[ModelRow]:
        sql = f"SELECT {_COLUMNS} FROM models WHERE shop_id = $1"
        args: list[Any] = [shop_id]
        if kind is not None:
            sql, args = sql + " AND kind = $2", [*args, kind]
        sql += " ORDER BY created_at DESC, version DESC"
        async with translated():
            found = await self._db.pool.fetch(sql, *args)
        return [_row(r) for r in found]

    async def get(self, shop_id: str, kind: str, version: int) -> ModelRow | None:
        async with translated():
            found = await self._db.pool.fetchrow(
                f"SELECT {_COLUMNS} FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3",
                shop_id,
                kind,
                version,
            )
        return _row(found) if found else None

    async def pin(self, shop_id: str, kind: str, version: int | None) -> None:
        async with translated(), self._db.pool.acquire() as conn, conn.transaction():
            if version is None:
                await conn.execute(
                    "DELETE FROM model_pins WHERE shop_id = $1 AND kind = $2", shop_id, kind
                )
            elif await conn.execute(_PIN, shop_id, kind, version) == "INSERT 0 0":
                raise NotFound(f"no published {kind} v{version} in {shop_id}")
            await conn.execute(BUMP_VERSION, shop_id, "models")

    async def pins(self, shop_id: str) -> dict[str, int]:
        async with translated():
            found = await self._db.pool.fetch(
                "SELECT kind, version FROM model_pins WHERE shop_id = $1", shop_id
            )
        return {r[0]: int(r[1]) for r in found}


def _json(value: dict[str, Any]) -> str:
    # allow_nan=False: JSON has no NaN and jsonb refuses it; the registry cleans values first.
    return json.dumps(value, allow_nan=False)


def _row(r: Any) -> ModelRow:
    return ModelRow(
        shop_id=r[0],
        kind=r[1],
        version=int(r[2]),
        status=r[3],
        config=json.loads(r[4]),
        data_window=json.loads(r[5]),
        metrics=json.loads(r[6]),
        artifact_uri=r[7],
        created_at=r[8],
        reason=r[9],
    )
