"""Helpers that look inside stores the way an auditor would."""

from __future__ import annotations

from typing import Any

from ingest.stores.base import Stores
from ingest.stores.redis_log import RedisIngestLog
from ingest.writer import StreamWriter


async def settle(stores: Stores) -> int:
    """Production backend: drain the ingest stream into PostgreSQL, as the writer deployment
    does; embedded: nothing to do (a commit was the durable write). Returns events handled."""
    if not isinstance(stores.admission, RedisIngestLog):
        return 0
    writer = StreamWriter(
        stores.admission, stores.events, "test-writer", read_count=500, block_ms=5
    )
    total = 0
    while n := await writer.cycle():
        total += n
    return total


async def dump_everything(stores: Stores, redis_prefix: str | None = None) -> str:
    """Every byte Nova keeps, as text: all SQLite/PostgreSQL tables and every Redis key."""
    parts: list[str] = []
    if stores.backend == "embedded":
        db = stores.health  # the SQLiteDatabase

        def _dump(conn: Any) -> list[str]:
            return list(conn.iterdump())

        parts += await db.run(_dump)  # type: ignore[attr-defined]
    else:
        pool = stores.events._db.pool  # type: ignore[attr-defined]
        tables = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
        for t in tables:
            rows = await pool.fetch(f'SELECT row_to_json(x)::text AS j FROM "{t[0]}" x')
            parts += [r["j"] for r in rows]
        client = stores.admission._r  # type: ignore[attr-defined]
        async for key in client.scan_iter(match=f"{redis_prefix}:*", count=1000):
            kind = (await client.type(key)).decode()
            if kind == "string":
                value: Any = await client.get(key)
            elif kind == "hash":
                value = await client.hgetall(key)
            elif kind == "list":
                value = await client.lrange(key, 0, -1)
            elif kind == "set":
                value = await client.smembers(key)
            elif kind == "zset":
                value = await client.zrange(key, 0, -1, withscores=True)
            else:
                value = await client.xrange(key)
            parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)
