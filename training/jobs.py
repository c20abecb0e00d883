"""The training jobs: `fit` one shop, `retrain` every shop that needs it. Each reads the
shop's window of interactions and its catalog from the stores, fits (training/pipeline.py,
with Ray Train for the data-parallel part) and publishes to the registry what clears its
floor. The same code runs from a laptop (`python -m training ...`) and on a cluster
(`ray job submit --working-dir . -- python -m training ...`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import Settings
from deployments.ranking.view import build_view
from ingest.errors import NotFound
from ingest.stores import open_stores
from ingest.stores.base import Stores
from training import data as data_mod
from training import pipeline
from training.config import TrainingConfig
from training.registry import ModelRejected, Registry

log = logging.getLogger(__name__)


@dataclass
class ShopReport:
    shop_id: str
    published: dict[str, int] = field(default_factory=dict)  # kind -> version
    rejected: dict[str, str] = field(default_factory=dict)  # kind -> why
    skipped: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


async def fit_shop(
    settings: Settings, config: TrainingConfig, shop_id: str, *, now: datetime | None = None
) -> ShopReport:
    stores = await open_stores(settings)
    try:
        return await fit_with_stores(stores, settings, config, shop_id, now=now)
    finally:
        await stores.close()


async def fit_with_stores(
    stores: Stores,
    settings: Settings,
    config: TrainingConfig,
    shop_id: str,
    *,
    now: datetime | None = None,
) -> ShopReport:
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    shop = await stores.shops.get_shop(shop_id)
    if shop is None:
        raise NotFound(f"no shop {shop_id}")
    shop_data = await data_mod.load(stores, shop_id, config.data, now)
    products = await stores.catalog.list_products(shop_id)
    collections = await stores.catalog.list_collections(shop_id)
    view = build_view(shop_id, shop.currency, products, collections) if products else None
    report = ShopReport(shop_id)
    report.seconds["read"] = time.perf_counter() - started
    registry = Registry(stores, settings.model_store)
    with tempfile.TemporaryDirectory(prefix="nova-fit-") as work:
        result = await asyncio.to_thread(
            pipeline.fit, shop_data, view, config, Path(work), now.timestamp()
        )
        report.skipped, report.window = result.skipped, result.window
        report.seconds.update(result.seconds)
        for fitted in result.fitted:
            report.metrics[fitted.kind] = fitted.metrics
            try:
                row = await registry.publish(
                    shop_id,
                    fitted.kind,
                    fitted.directory,
                    config=fitted.config,
                    window=result.window,
                    metrics=fitted.metrics,
                    floor=fitted.floor,
                )
            except ModelRejected as exc:
                report.rejected[fitted.kind] = str(exc)
                log.warning("%s: %s", shop_id, exc)
            else:
                report.published[fitted.kind] = row.version
                log.info("%s: published %s v%d", shop_id, fitted.kind, row.version)
    report.seconds["total"] = time.perf_counter() - started
    return report


async def shops_to_retrain(
    settings: Settings, config: TrainingConfig, *, now: datetime | None = None
) -> list[str]:
    """Installed shops whose newest fit is missing, or older than the retrain interval with
    at least min_new_events events stored since."""
    now = now or datetime.now(UTC)
    stores = await open_stores(settings)
    try:
        due = []
        for shop in await stores.shops.list_shops():
            if shop.uninstalled_at is not None:
                continue
            rows = await stores.models.rows(shop.shop_id)
            if not rows:
                due.append(shop.shop_id)
                continue
            last = max(r.created_at for r in rows)
            if (now - last).total_seconds() < config.retrain.min_interval_hours * 3600:
                continue
            fresh = await stores.training.count(shop.shop_id, last, now)
            if fresh >= config.retrain.min_new_events:
                due.append(shop.shop_id)
        return due
    finally:
        await stores.close()


def retrain(
    settings: Settings, config: TrainingConfig, shop_ids: list[str]
) -> list[dict[str, Any]]:
    """Fan out one Ray task per shop, at most max_parallel at a time. Each task runs the shop's
    whole fit (its Ray Train runs included) and publishes; one shop's failure is its report,
    not the run's end."""
    import ray

    from training.distributed import ensure_ray

    ensure_ray()
    # num_cpus=0: the task is a coordinator; the CPUs are reserved by its Ray Train workers.
    remote_fit = ray.remote(num_cpus=0, max_retries=0)(_fit_in_task)
    reports: list[dict[str, Any]] = []
    pending: list[Any] = []
    queue = list(shop_ids)
    while queue or pending:
        while queue and len(pending) < config.retrain.max_parallel:
            pending.append(remote_fit.remote(settings, config, queue.pop(0)))
        done, pending = ray.wait(pending, num_returns=1)
        reports.append(ray.get(done[0]))
    return reports


def _fit_in_task(settings: Settings, config: TrainingConfig, shop_id: str) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return asyncio.run(fit_shop(settings, config, shop_id)).as_dict()
    except Exception as exc:  # the report carries it; the other shops go on
        log.exception("%s: fit failed", shop_id)
        return {"shop_id": shop_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
