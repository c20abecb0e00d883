"""Trained models reaching live ranking replicas on a local Ray Serve cluster (production
backend), without a restart: the training job runs in this process against the stores and
model store the running app uses, and every check goes through the app's HTTP API or the
Recommendations replicas' own log files.

The tests run in order and build on each other: v1 fitted, v2 fitted, v3 broken, then pins.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from conftest import _clear_redis_prefix
from support.tcpproxy import free_port

from config.settings import Settings, load_settings
from deployments import demo, runtime
from deployments.simulate import Shopper, generate_catalog
from ingest.stores import open_stores
from training import config as training_config
from training import jobs
from training.config import TrainingConfig
from training.registry import Floor, Registry

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]
AUTH = {"Authorization": "Bearer op-token"}
# Replicas poll the shop's change counters every 2 s; loading a model takes well under 1 s.
PICKUP_S = 30.0


@dataclass
class Live:
    settings: Settings
    api: str
    client: httpx.Client
    logs: Path  # this cluster's session log directory (not session_latest: tests may overlap)


@dataclass
class Shop:
    shop_id: str
    client_id: str  # a consented shopper with recent views
    anchor: str  # the product that shopper viewed last (related answers are about it)


@pytest.fixture(scope="module")
def live(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    prefix = f"novatest-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {
            "NOVA_DATABASE_URL": postgres_url,
            "NOVA_REDIS_URL": redis_url,
            "NOVA_REDIS_PREFIX": prefix,
            "NOVA_OPERATOR_TOKEN": "op-token",
            "NOVA_SHOPIFY_API_SECRET": "shpss_test_secret",
            "NOVA_HTTP_PORT": str(free_port()),
            "NOVA_RECS_CACHE_TTL_S": "0",
            # Where this process publishes and the replicas (same machine) load from.
            "NOVA_MODEL_STORE": str(tmp_path_factory.mktemp("models")),
        }
    )
    running = runtime.start(
        settings, dashboard=False, num_cpus=2, object_store_memory=200 * 1024**2
    )
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())  # type: ignore[attr-defined]
    client = httpx.Client(base_url=running.api_url, timeout=60)
    try:
        yield Live(settings, running.api_url, client, logs)
    finally:
        client.close()
        runtime.stop()
        _clear_redis_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def config() -> TrainingConfig:
    loaded = training_config.load()
    return loaded.model_copy(update={"ray": loaded.ray.model_copy(update={"num_workers": 0})})


@pytest.fixture(scope="module")
def shop(live: Live) -> Shop:
    """A shop with a day of consented traffic through the public endpoints."""
    client = live.client
    created = client.post(
        "/admin/shops", json={"shop": f"models-{uuid.uuid4().hex[:6]}.myshopify.com"}, headers=AUTH
    ).json()
    shop_id, key = created["shop"], created["ingest_key"]
    catalog = generate_catalog(80, seed=5)
    loaded = asyncio.run(demo.load_through_http(live.api, live.settings, shop_id, catalog))
    assert set(loaded.statuses) == {200}
    shopper = Shopper(shop_id, catalog, seed=9, consent_mix=(1.0, 0, 0), events_per_batch=20)
    batches = list(shopper.batches(300))
    sent = asyncio.run(demo.send(live.api, key, batches))
    assert set(sent.statuses) == {202}
    orders = asyncio.run(demo.post_orders(live.api, live.settings, shop_id, batches))
    assert set(orders) <= {200}
    summary = asyncio.run(demo.stored_summary(live.settings, shop_id, sent.accepted))
    assert summary["total"] >= sent.accepted
    tables = client.post(f"/admin/shops/{shop_id}/stats/refresh", headers=AUTH)
    assert tables.status_code == 200
    # The last shopper's session is the freshest (sessions are spread over the day in order).
    last = batches[-1]["events"][0]["clientId"]
    viewed = [
        e["data"]["productVariant"]["product"]["id"]
        for b in batches
        for e in b["events"]
        if e["clientId"] == last and e["name"] == "product_viewed"
    ]
    assert viewed, "the last shopper viewed nothing"
    return Shop(shop_id, last, viewed[-1].rsplit("/", 1)[-1])


def wait_until(check: Callable[[], Any], timeout_s: float = PICKUP_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def recommend(live: Live, shop: Shop, intent: str) -> dict[str, Any]:
    params: dict[str, Any] = {"shop": shop.shop_id, "intent": intent, "limit": 8}
    if intent == "related":
        params["product_id"] = shop.anchor
    else:
        params |= {"client_id": shop.client_id, "consent": "granted"}
    r = live.client.get("/v1/recommendations", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["products"], body
    return body


def sources(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [why for p in body["products"] for why in p["reasons"] if why["type"] == "source"]


def answered_by_a_model(live: Live, shop: Shop, intent: str) -> bool:
    return trained(recommend(live, shop, intent))


def trained(body: dict[str, Any]) -> bool:
    """Whether a trained model shaped this answer: a cf neighbour or a re-ranked candidate."""
    return any(s["name"] == "cf" or s.get("model") == "reranker" for s in sources(body))


def replica_log(live: Live) -> str:
    """Everything the Recommendations replicas of this cluster have logged so far."""
    files = sorted((live.logs / "serve").glob("replica_*Recommendations*.log"))
    return "\n".join(f.read_text(errors="replace") for f in files)


def logged(live: Live, shop: Shop, pattern: str) -> bool:
    """Whether a replica logged `pattern` (after the shop's name). Replicas look at a shop's
    counters when it is asked for (at most every 2 s), so each check asks first."""
    recommend(live, shop, "related")
    return re.search(re.escape(shop.shop_id) + " " + pattern, replica_log(live)) is not None


def serving(live: Live, shop: Shop) -> dict[str, Any]:
    r = live.client.get(f"/admin/shops/{shop.shop_id}/models", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def fit(live: Live, config: TrainingConfig, shop: Shop) -> jobs.ShopReport:
    started = time.perf_counter()
    report = asyncio.run(jobs.fit_shop(live.settings, config, shop.shop_id))
    print(f"fit: {time.perf_counter() - started:.1f}s, {report.published}")
    # Only cf matters here; co_purchase and the re-ranker may not beat popularity on this
    # little traffic (their refusals are tests/service/test_training_pipeline.py's business).
    assert "cf" in report.published, report.as_dict()
    return report


def test_a_published_model_serves_without_a_restart(
    live: Live, shop: Shop, config: TrainingConfig
) -> None:
    # Before any fit, answers come from statistics and content only.
    for intent in ("related", "personalized"):
        assert not trained(recommend(live, shop, intent)), intent
    report = fit(live, config, shop)
    assert report.published["cf"] == 1
    for intent in ("related", "personalized"):
        assert wait_until(partial(answered_by_a_model, live, shop, intent)), (
            intent,
            sources(recommend(live, shop, intent)),
        )
    assert wait_until(lambda: logged(live, shop, r"cf: none -> v1\b")), replica_log(live)[-2000:]
    if "reranker" in report.published:
        body = recommend(live, shop, "related")
        assert any(s.get("model") == "reranker" for s in sources(body)), sources(body)


def test_a_new_version_replaces_the_old_one(live: Live, shop: Shop, config: TrainingConfig) -> None:
    assert serving(live, shop)["serving"]["cf"] == 1
    report = fit(live, config, shop)
    assert report.published["cf"] == 2
    assert serving(live, shop)["serving"]["cf"] == 2
    assert wait_until(lambda: logged(live, shop, r"cf: v1 -> v2\b")), replica_log(live)[-2000:]
    assert trained(recommend(live, shop, "related"))


def test_a_broken_artifact_is_refused_and_the_old_version_keeps_serving(
    live: Live, shop: Shop, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "neighbours.npz").write_bytes(b"this is not a zip file")
    row = asyncio.run(publish(live.settings, shop.shop_id, "cf", broken))
    assert row == 3
    assert serving(live, shop)["serving"]["cf"] == 3  # the registry serves it...
    assert wait_until(  # ...the replica cannot, and says so
        lambda: logged(live, shop, r"cf: cannot load v3 \(.*\); keeping v2\b")
    ), replica_log(live)[-2000:]
    for intent in ("related", "personalized"):
        body = recommend(live, shop, intent)
        assert any(s["name"] == "cf" for s in sources(body)), (intent, sources(body))


def test_pin_rollback_and_unpin_switch_the_serving_version(
    live: Live, shop: Shop, tmp_path: Path
) -> None:
    shop_id = shop.shop_id
    base = f"/admin/shops/{shop_id}/models/cf"
    client = live.client
    r = client.post(f"{base}/pin", json={"version": 1}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["pinned"], r.json()["serving"]["version"]) == (1, 1)
    assert wait_until(lambda: logged(live, shop, r"cf: v2 -> v1\b")), replica_log(live)[-2000:]
    # Nothing before v1 to roll back to.
    assert client.post(f"{base}/rollback", headers=AUTH).status_code == 400

    # A good v4 (v2's files again), then unpin: the newest published version serves.
    v2 = next(m for m in serving(live, shop)["models"] if (m["kind"], m["version"]) == ("cf", 2))
    good = Path(v2["artifact_uri"].removeprefix("file://"))
    copy = tmp_path / "v4"
    shutil.copytree(good, copy)
    assert asyncio.run(publish(live.settings, shop_id, "cf", copy)) == 4
    # Pinned: publishing v4 changes nothing for serving.
    assert serving(live, shop)["serving"]["cf"] == 1
    r = client.delete(f"{base}/pin", headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["pinned"], r.json()["serving"]["version"]) == (None, 4)
    assert wait_until(lambda: logged(live, shop, r"cf: v1 -> v4\b")), replica_log(live)[-2000:]

    # Rollback pins the published version before v4: v3, whose files the replica cannot
    # load (the registry cannot know), so it keeps v4; rolling back again reaches v2.
    r = client.post(f"{base}/rollback", headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["pinned"], r.json()["serving"]["version"]) == (3, 3)
    assert wait_until(lambda: logged(live, shop, r"cf: cannot load v3 \(.*\); keeping v4\b")), (
        replica_log(live)[-2000:]
    )
    r = client.post(f"{base}/rollback", headers=AUTH)
    assert (r.status_code, r.json()["pinned"]) == (200, 2), r.text
    assert wait_until(lambda: logged(live, shop, r"cf: v4 -> v2\b")), replica_log(live)[-2000:]
    listed = serving(live, shop)
    assert (listed["serving"]["cf"], listed["pins"]) == (2, {"cf": 2})
    assert trained(recommend(live, shop, "related"))


async def publish(settings: Settings, shop_id: str, kind: str, directory: Path) -> int:
    """Publish files as a fit would, with metrics that clear the floor."""
    stores = await open_stores(settings, migrate=False)
    try:
        row = await Registry(stores, settings.model_store).publish(
            shop_id,
            kind,
            directory,
            config={"kind": "item_knn"},
            window={"events": 1},
            metrics={"ndcg@10": 0.9},
            floor=Floor("ndcg@10", 0.1),
        )
        return row.version
    finally:
        await stores.close()
