"""Ray Serve deployment that runs the stream-to-PostgreSQL writer (production backend only).

It answers no HTTP; Serve gives it what a long-running worker needs: placement, restarts on
failed health checks, rolling updates and metrics. More replicas share the stream through the
consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import asdict
from typing import Any

from ray import serve

from config.settings import Backend, ConfigError, load_settings
from deployments.logs import to_replica_log
from deployments.metrics import WriterMetrics
from ingest.errors import StoreUnavailable
from ingest.retry import WRITER_BACKOFF
from ingest.stores import open_stores
from ingest.stores.redis_log import RedisIngestLog
from ingest.writer import StreamWriter

log = logging.getLogger(__name__)
_REPORT_EVERY_S = 5.0


@serve.deployment(
    name="EventWriter",
    num_replicas=1,
    ray_actor_options={"num_cpus": 0.25},
    health_check_period_s=10,
    health_check_timeout_s=10,
)
class WriterDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        settings = load_settings()
        if settings.backend is not Backend.PRODUCTION:
            raise ConfigError("the writer drains Redis into PostgreSQL: set NOVA_DATABASE_URL")
        self._stores = await open_stores(settings, migrate=False)
        stream = self._stores.admission
        if not isinstance(stream, RedisIngestLog):
            raise ConfigError("production stores must admit through the Redis ingest log")
        self._stream = stream
        self._writer = StreamWriter(
            stream,
            self._stores.events,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            read_count=settings.writer_read_count,
            block_ms=settings.writer_block_ms,
        )
        self._metrics = WriterMetrics()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self._reporter = asyncio.create_task(self._report())

    async def _run(self) -> None:
        await self._migrate()
        await self._writer.run(self._stop)

    async def _migrate(self) -> None:
        """The schema must exist before the first write; PostgreSQL may not be up yet."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self._stores.schema.migrate()
                return
            except StoreUnavailable as exc:
                failures += 1
                log.warning("waiting for PostgreSQL to migrate: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), WRITER_BACKOFF.delay(failures))

    async def _report(self) -> None:
        reported = {"written": 0, "deduplicated": 0, "failures": 0}
        while not self._stop.is_set():
            stats = self._writer.stats
            now = {
                "written": stats.events_written,
                "deduplicated": stats.events_deduplicated,
                "failures": stats.failures,
            }
            for name, counter in (
                ("written", self._metrics.written),
                ("deduplicated", self._metrics.deduplicated),
                ("failures", self._metrics.failures),
            ):
                if now[name] > reported[name]:
                    counter.inc(now[name] - reported[name])
            reported = now
            self._metrics.store_up.set(1.0 if stats.store_up else 0.0)
            with contextlib.suppress(StoreUnavailable):
                self._metrics.backlog.set(float(await self._stream.depth()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _REPORT_EVERY_S)

    async def stats(self) -> dict[str, Any]:
        """For operators and tests (through a handle): counters and the current backlog."""
        out = asdict(self._writer.stats)
        out["backlog_entries"] = await self._stream.depth()
        return out

    async def check_health(self) -> None:
        if self._task.done():
            raise RuntimeError(f"writer loop ended: {self._task!r}")
        # PostgreSQL being down is an expected, buffered state (see stats and the store_up
        # gauge); losing Redis, the source of everything this replica does, is not.
        await self._stores.health.ping()

    async def __del__(self) -> None:
        self._stop.set()
        for task in (self._task, self._reporter):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        await self._stores.close()
