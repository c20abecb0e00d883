"""Embedded backend: the model registry's rows, version sequences and pins."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from ingest.errors import AlreadyExists, NotFound
from ingest.records import ModelRow
from ingest.stores.sqlite_catalog import bump
from ingest.stores.sqlite_db import SQLiteDatabase, transaction

_COLUMNS = (
    "shop_id, kind, version, status, config, data_window, metrics, artifact_uri, created_at, reason"
)
# One statement, so it is atomic across processes sharing the file as well.
_NEXT = (
    "INSERT INTO model_sequences VALUES (?, ?, 1) ON CONFLICT (shop_id, kind) "
    "DO UPDATE SET last_version = last_version + 1 RETURNING last_version"
)
_PIN = (
    "INSERT INTO model_pins SELECT shop_id, kind, version FROM models "
    "WHERE shop_id = ? AND kind = ? AND version = ? AND status = 'published' "
    "ON CONFLICT (shop_id, kind) DO UPDATE SET version = excluded.version"
)


class SQLiteModels:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def next_version(self, shop_id: str, kind: str) -> int:
        row = await self._db.run(lambda c: c.execute(_NEXT, (shop_id, kind)).fetchone())
        return int(row[0])

    async def add(self, row: ModelRow) -> None:
        values = (
            row.shop_id,
            row.kind,
            row.version,
            row.status,
            _json(row.config),
            _json(row.data_window),
            _json(row.metrics),
            row.artifact_uri,
            row.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            row.reason,
        )

        def _add(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                try:
                    conn.execute(f"INSERT INTO models ({_COLUMNS}) VALUES ({_MARKS})", values)
                except sqlite3.IntegrityError:
                    raise AlreadyExists(
                        f"{row.kind} v{row.version} of {row.shop_id} exists"
                    ) from None
                if row.published:
                    bump(conn, row.shop_id, "models")

        await self._db.run(_add)

    async def rows(self, shop_id: str, kind: str | None = None) -> list[ModelRow]:
        sql = f"SELECT {_COLUMNS} FROM models WHERE shop_id = ?"
        args: tuple[Any, ...] = (shop_id,)
        if kind is not None:
            sql, args = sql + " AND kind = ?", (shop_id, kind)
        sql += " ORDER BY created_at DESC, version DESC"
        found = await self._db.run(lambda c: c.execute(sql, args).fetchall())
        return [_row(r) for r in found]

    async def get(self, shop_id: str, kind: str, version: int) -> ModelRow | None:
        found = await self._db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM models WHERE shop_id = ? AND kind = ? AND version = ?",
                (shop_id, kind, version),
            ).fetchone()
        )
        return _row(found) if found else None

    async def pin(self, shop_id: str, kind: str, version: int | None) -> None:
        def _pin(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                if version is None:
                    conn.execute(
                        "DELETE FROM model_pins WHERE shop_id = ? AND kind = ?", (shop_id, kind)
                    )
                elif conn.execute(_PIN, (shop_id, kind, version)).rowcount == 0:
                    raise NotFound(f"no published {kind} v{version} in {shop_id}")
                bump(conn, shop_id, "models")

        await self._db.run(_pin)

    async def pins(self, shop_id: str) -> dict[str, int]:
        found = await self._db.run(
            lambda c: c.execute(
                "SELECT kind, version FROM model_pins WHERE shop_id = ?", (shop_id,)
            ).fetchall()
        )
        return {r[0]: int(r[1]) for r in found}


_MARKS = ", ".join("?" for _ in _COLUMNS.split(","))


def _json(value: dict[str, Any]) -> str:
    # allow_nan=False: JSON has no NaN (PostgreSQL refuses it); the registry cleans values first.
    return json.dumps(value, allow_nan=False)


def _row(r: sqlite3.Row) -> ModelRow:
    return ModelRow(
        shop_id=r[0],
        kind=r[1],
        version=int(r[2]),
        status=r[3],
        config=json.loads(r[4]),
        data_window=json.loads(r[5]),
        metrics=json.loads(r[6]),
        artifact_uri=r[7],
        created_at=datetime.fromisoformat(r[8]),
        reason=r[9],
    )
