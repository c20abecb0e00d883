"""`python -m training retrain`'s two halves: which shops are due, and the fan-out that fits
them as Ray tasks, one shop's failure being its own report."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import ray
from conftest import embedded_env
from support.traffic import simulated_shop

from config.settings import Settings, load_settings
from deployments.simulate import Catalog, generate_catalog
from ingest.stores import open_stores
from training import config as training_config
from training import jobs
from training.config import TrainingConfig
from training.registry import Floor, Registry

pytestmark = [pytest.mark.ray]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    if ray.is_initialized():  # left by an earlier module (the CLI's ensure_ray starts one)
        ray.shutdown()
    ray.init(
        "local",  # a cluster of this module's own, even if `ray start` left an address file
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return generate_catalog(80, seed=5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(embedded_env(tmp_path, NOVA_RATE_LIMIT_EVENTS_PER_S="1000000"))


def local(config: TrainingConfig, **retrain: float) -> TrainingConfig:
    return config.model_copy(
        update={
            "ray": config.ray.model_copy(update={"num_workers": 0}),
            "retrain": config.retrain.model_copy(update=retrain),
        }
    )


async def fitted_at(settings: Settings, shop_id: str, when: datetime, tmp: Path) -> None:
    """Record a published fit of `shop_id` made at `when`."""
    files = tmp / "fitted"
    files.mkdir(exist_ok=True)
    (files / "config.json").write_text("{}")
    stores = await open_stores(settings)
    try:
        await Registry(stores, settings.model_store, clock=lambda: when).publish(
            shop_id,
            "cf",
            files,
            config={},
            window={},
            metrics={"ndcg@10": 0.5},
            floor=Floor("ndcg@10", 0.1),
        )
    finally:
        await stores.close()


async def test_due_shops_have_no_model_or_enough_new_events_since_the_last_fit(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    """New events are counted by when they were stored, so the fits are dated around the
    moment the shops' traffic arrived (t0 .. t1)."""
    t0 = datetime.now(UTC)
    never = await simulated_shop(settings, "never.myshopify.com", catalog, 10)
    busy = await simulated_shop(settings, "busy.myshopify.com", catalog, 30)
    quiet = await simulated_shop(settings, "quiet.myshopify.com", catalog, 30)
    fresh = await simulated_shop(settings, "fresh.myshopify.com", catalog, 30, seed=4)
    gone = await simulated_shop(settings, "gone.myshopify.com", catalog, 10)
    t1 = datetime.now(UTC)
    await fitted_at(settings, busy.shop_id, t0 - timedelta(hours=30), tmp_path)  # before it all
    await fitted_at(settings, quiet.shop_id, t1 + timedelta(minutes=1), tmp_path)  # after it all
    await fitted_at(settings, fresh.shop_id, t0 - timedelta(minutes=1), tmp_path)  # just before
    later = t1 + timedelta(hours=2)
    stores = await open_stores(settings)
    try:
        await stores.shops.save_shop(replace(gone, uninstalled_at=t1))
        counts = [
            await stores.training.count(s.shop_id, t0 - timedelta(hours=30), later)
            for s in (busy, fresh)
        ]
        assert await stores.training.count(quiet.shop_id, t1 + timedelta(minutes=1), later) == 0
    finally:
        await stores.close()
    assert min(counts) > 100

    hourly = training_config.load()
    enough = local(hourly, min_interval_hours=1, min_new_events=min(counts))
    due = await jobs.shops_to_retrain(settings, enough, now=later)
    assert sorted(due) == sorted([never.shop_id, busy.shop_id, fresh.shop_id])
    # One event more than the busier of the two has: only the shop without a model.
    too_many = local(hourly, min_interval_hours=1, min_new_events=max(counts) + 1)
    assert await jobs.shops_to_retrain(settings, too_many, now=later) == [never.shop_id]
    # Right after the traffic, fresh's fit is younger than the interval: it waits.
    soon = await jobs.shops_to_retrain(
        settings, local(hourly, min_interval_hours=1, min_new_events=1), now=t1
    )
    assert sorted(soon) == sorted([never.shop_id, busy.shop_id])
    assert quiet.shop_id not in due + soon and gone.shop_id not in due + soon


def test_retrain_fits_each_shop_in_a_ray_task_and_reports_failures_per_shop(
    cluster: None, settings: Settings, catalog: Catalog
) -> None:
    shops = [
        asyncio.run(simulated_shop(settings, f"{name}.myshopify.com", catalog, 300, seed=seed))
        for name, seed in (("north", 3), ("south", 4))
    ]
    missing = "nope.myshopify.com"
    ids = [shops[0].shop_id, missing, shops[1].shop_id]

    reports = jobs.retrain(settings, local(training_config.load(), max_parallel=2), ids)

    by_shop = {r["shop_id"]: r for r in reports}
    assert sorted(by_shop) == sorted(ids) and len(reports) == 3, reports
    failed = by_shop[missing]
    assert failed["ok"] is False and failed["error"].startswith("NotFound"), failed
    for shop in shops:
        report = by_shop[shop.shop_id]
        assert report["published"].get("cf") == 1, report

    async def serving() -> dict[str, dict[str, int]]:
        stores = await open_stores(settings)
        try:
            registry = Registry(stores, settings.model_store)
            return {
                s.shop_id: {k: r.version for k, r in (await registry.serving(s.shop_id)).items()}
                for s in shops
            }
        finally:
            await stores.close()

    for shop_id, kinds in asyncio.run(serving()).items():
        assert kinds.get("cf") == 1, (shop_id, kinds)
        assert Path(settings.model_store, shop_id, "cf", "v1").is_dir()
    # The fits ran in Ray workers, not in this process: their log lines are in worker logs.
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())  # type: ignore[attr-defined]
    worker_logs = "".join(f.read_text(errors="replace") for f in logs.glob("worker-*.err"))
    for shop in shops:
        assert f"{shop.shop_id}: published cf v1" in worker_logs
    assert f"{missing}: fit failed" in worker_logs
