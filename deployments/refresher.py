"""Ray Serve deployment that keeps every shop's co-occurrence statistics fresh.

It answers no HTTP. Every minute it looks at each installed shop and recomputes the neighbour
tables (deployments/ranking/refresh.py) of those older than NOVA_STATS_REFRESH_S; serving
replicas see the new version and reload them. One replica is enough: the work is a few
sparse-matrix products per shop. Trained models (issue 4) will be scheduled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from ray import serve

from config.settings import load_settings
from deployments.logs import to_replica_log
from deployments.ranking.refresh import TABLES, refresh_stats
from ingest.errors import StoreUnavailable
from ingest.stores import open_stores

log = logging.getLogger(__name__)
_LOOK_EVERY_S = 60.0


@serve.deployment(
    name="StatsRefresher",
    num_replicas=1,
    ray_actor_options={"num_cpus": 0.25},
    health_check_period_s=30,
)
class RefresherDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        self._settings = load_settings()
        self._stores = await open_stores(self._settings, migrate=False)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        every = self._settings.stats_refresh_s
        while every > 0 and not self._stop.is_set():
            try:
                await self.refresh_due()
            except StoreUnavailable as exc:
                log.warning("cannot refresh statistics now: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _LOOK_EVERY_S)

    async def refresh_due(self) -> list[str]:
        """Recompute the statistics of shops whose tables are missing or stale; returns them."""
        now = datetime.now(UTC)
        due = []
        for shop in await self._stores.shops.list_shops():
            if shop.uninstalled_at is not None:
                continue
            found = await self._stores.stats.stats(shop.shop_id, next(iter(TABLES)))
            stale = found is None or now - found[0] > timedelta(
                seconds=self._settings.stats_refresh_s
            )
            if stale:
                await refresh_stats(
                    self._stores, shop.shop_id, now, window_days=self._settings.stats_window_days
                )
                due.append(shop.shop_id)
        return due

    async def check_health(self) -> None:
        if self._task.done() and self._settings.stats_refresh_s > 0:
            raise RuntimeError(f"refresh loop ended: {self._task!r}")

    async def __del__(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 10)
        await self._stores.close()
