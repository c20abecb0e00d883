"""Store interfaces (base.py) and the factory that opens the backend the settings name."""

from __future__ import annotations

from typing import Any

from config.settings import Backend, Settings
from ingest.stores.base import Stores


async def open_stores(settings: Settings, *, migrate: bool = True) -> Stores:
    """Embedded: one SQLite file (migrated on open). Production: PostgreSQL + Redis; with
    migrate=False no server has to be up for this to return (pools connect lazily)."""
    if settings.backend is Backend.EMBEDDED:
        from ingest.stores.local import LocalRateLimiter
        from ingest.stores.sqlite import (
            SQLiteEvents,
            SQLitePopularity,
            SQLiteShops,
            SQLiteVisitors,
        )
        from ingest.stores.sqlite_catalog import (
            SQLiteCatalog,
            SQLiteDeliveries,
            SQLiteMerch,
            SQLiteStats,
            SQLiteVersions,
        )
        from ingest.stores.sqlite_db import SQLiteDatabase
        from ingest.stores.sqlite_models import SQLiteModels
        from ingest.stores.sqlite_training import SQLiteTrainingData

        db = SQLiteDatabase(settings.sqlite_path)
        await db.open()
        events = SQLiteEvents(db, settings.dedupe_window_s)
        return Stores(
            backend=Backend.EMBEDDED.value,
            shops=SQLiteShops(db),
            admission=events,
            events=events,
            training=SQLiteTrainingData(db),
            visitors=SQLiteVisitors(db),
            popularity=SQLitePopularity(db),
            rate_limiter=LocalRateLimiter(),
            catalog=SQLiteCatalog(db),
            merch=SQLiteMerch(db),
            stats=SQLiteStats(db),
            models=SQLiteModels(db),
            versions=SQLiteVersions(db),
            deliveries=SQLiteDeliveries(db),
            health=db,
            schema=db,
            closers=[db],
        )

    from ingest.stores.postgres import PostgresDatabase, PostgresEvents, PostgresShops
    from ingest.stores.postgres_catalog import (
        PostgresCatalog,
        PostgresDeliveries,
        PostgresMerch,
        PostgresStats,
        PostgresVersions,
    )
    from ingest.stores.postgres_models import PostgresModels
    from ingest.stores.postgres_training import PostgresTrainingData
    from ingest.stores.redis_log import RedisIngestLog
    from ingest.stores.redis_state import (
        MirroredShops,
        RedisHealth,
        RedisPopularity,
        RedisRateLimiter,
        RedisVisitors,
        connect,
    )

    assert settings.database_url is not None and settings.redis_url is not None  # validated
    pg = PostgresDatabase(settings.database_url.get_secret_value())
    await pg.open(migrate_schema=migrate)
    redis_url = settings.redis_url.get_secret_value()
    client = connect(redis_url)
    prefix = settings.redis_prefix
    visitors = RedisVisitors(client, prefix, redis_url)
    return Stores(
        backend=Backend.PRODUCTION.value,
        shops=MirroredShops(PostgresShops(pg), client, prefix),
        admission=RedisIngestLog(client, prefix, settings.dedupe_window_s),
        events=PostgresEvents(pg),
        training=PostgresTrainingData(pg),
        visitors=visitors,
        popularity=RedisPopularity(client, prefix),
        rate_limiter=RedisRateLimiter(client, prefix),
        catalog=PostgresCatalog(pg),
        merch=PostgresMerch(pg),
        stats=PostgresStats(pg),
        models=PostgresModels(pg),
        versions=PostgresVersions(pg),
        deliveries=PostgresDeliveries(pg),
        health=RedisHealth(client),
        schema=pg,
        closers=[pg, _RedisCloser(client), visitors],
    )


class _RedisCloser:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["Stores", "open_stores"]
