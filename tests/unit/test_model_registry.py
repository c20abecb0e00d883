"""training/registry.py on embedded stores, with a local-directory root and a file:// URL root."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import embedded_env

from config.settings import load_settings
from ingest.errors import InvalidRequest, NotFound
from ingest.stores import open_stores
from ingest.stores.base import Stores
from training.registry import Floor, ModelRejected, Registry, floor_failure

SHOP = "registry-test.myshopify.com"
FLOOR = Floor(metric="ndcg@10", baseline=0.20)
FILES = {
    "config.json": b'{"factors": 32}',
    "arrays.npz": bytes(range(256)) * 40,
    "model.json": b'{"learner": {}}\n',
}


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = await open_stores(load_settings(embedded_env(tmp_path / "data")))
    yield opened
    await opened.close()


@pytest.fixture(params=["path", "url"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    directory = tmp_path / "registry"
    return str(directory) if request.param == "path" else directory.as_uri()


@pytest.fixture
def registry(stores: Stores, root: str) -> Registry:
    return Registry(stores, root)


@pytest.fixture
def fitted(tmp_path: Path) -> Path:
    directory = tmp_path / "fitted"
    directory.mkdir()
    for name, data in FILES.items():
        (directory / name).write_bytes(data)
    return directory


def artifact_dir(root: str, kind: str, version: int) -> Path:
    base = Path(root.removeprefix("file://"))
    return base / SHOP / kind / f"v{version}"


async def publish(
    registry: Registry,
    directory: Path,
    kind: str = "als",
    ndcg: float = 0.25,
    extra: dict[str, float] | None = None,
) -> Any:
    return await registry.publish(
        SHOP,
        kind,
        directory,
        config={"factors": 32},
        window={"from": datetime(2026, 1, 1, tzinfo=UTC), "interactions": np.int64(1200)},
        metrics={"ndcg@10": ndcg, "recall@20": np.float32(0.5), **(extra or {})},
        floor=FLOOR,
    )


async def models_version(stores: Stores) -> int:
    return (await stores.versions.get(SHOP)).get("models", 0)


# --- publishing --------------------------------------------------------------------------------


async def test_a_model_above_its_floor_is_published(
    registry: Registry, stores: Stores, root: str, fitted: Path
) -> None:
    row = await publish(registry, fitted)
    assert (row.kind, row.version, row.status, row.reason) == ("als", 1, "published", None)
    assert row.artifact_uri == artifact_dir(root, "als", 1).as_uri()
    for name, data in FILES.items():
        assert (artifact_dir(root, "als", 1) / name).read_bytes() == data
    assert row.data_window == {"from": "2026-01-01T00:00:00+00:00", "interactions": 1200}
    assert row.metrics == {"ndcg@10": 0.25, "recall@20": 0.5}
    assert await stores.models.get(SHOP, "als", 1) == row
    assert await models_version(stores) == 1
    assert await registry.serving(SHOP) == {"als": row}


async def test_versions_increase_per_kind_and_the_newest_serves(
    registry: Registry, stores: Stores, fitted: Path
) -> None:
    v1 = await publish(registry, fitted)
    v2 = await publish(registry, fitted, ndcg=0.21)
    e1 = await publish(registry, fitted, kind="ease")
    assert (v1.version, v2.version, e1.version) == (1, 2, 1)
    assert await registry.serving(SHOP) == {"als": v2, "ease": e1}
    assert await models_version(stores) == 3
    assert [r.version for r in await registry.rows(SHOP, "als")] == [2, 1]


async def test_a_non_finite_metric_is_rejected(
    registry: Registry, stores: Stores, root: str, fitted: Path
) -> None:
    with pytest.raises(ModelRejected, match=r"als v1 .* recall@20 is nan"):
        await publish(registry, fitted, ndcg=0.9, extra={"recall@20": float("nan")})
    with pytest.raises(ModelRejected, match="ndcg@10 is inf"):
        await publish(registry, fitted, ndcg=math.inf)
    rows = await registry.rows(SHOP)
    assert [(r.version, r.status, r.artifact_uri) for r in rows] == [
        (2, "rejected", None),
        (1, "rejected", None),
    ]
    assert rows[1].metrics["recall@20"] is None  # JSON has no NaN; the reason names it
    assert not artifact_dir(root, "als", 1).exists()
    assert await models_version(stores) == 0
    assert await registry.serving(SHOP) == {}


async def test_below_the_baseline_is_rejected_and_serving_is_unchanged(
    registry: Registry, stores: Stores, root: str, fitted: Path
) -> None:
    v1 = await publish(registry, fitted)
    with pytest.raises(ModelRejected) as info:
        await publish(registry, fitted, ndcg=0.15)
    message = str(info.value)
    assert "als v2" in message and "ndcg@10 0.15 is below the popularity baseline 0.2" in message
    assert info.value.row.status == "rejected" and info.value.floor == FLOOR
    assert await stores.models.get(SHOP, "als", 2) == info.value.row
    assert info.value.row.reason is not None and "0.15" in info.value.row.reason
    assert not artifact_dir(root, "als", 2).exists()
    assert await registry.serving(SHOP) == {"als": v1}
    assert await models_version(stores) == 1
    # A rejected fit's number is spent.
    assert (await publish(registry, fitted, ndcg=0.3)).version == 3


async def test_a_missing_floor_metric_is_rejected(registry: Registry, fitted: Path) -> None:
    with pytest.raises(ModelRejected, match="ndcg@10 is missing"):
        await registry.publish(
            SHOP, "als", fitted, config={}, window={}, metrics={"map": 0.9}, floor=FLOOR
        )


def test_a_tie_with_the_baseline_passes_only_for_popularity() -> None:
    metrics = {"ndcg@10": 0.2}
    assert floor_failure("popularity", metrics, FLOOR) is None
    reason = floor_failure("als", metrics, FLOOR)
    assert reason is not None and "equals the popularity baseline" in reason
    assert floor_failure("popularity", {"ndcg@10": 0.19}, FLOOR) is not None
    assert floor_failure("als", {"ndcg@10": 0.2001}, FLOOR) is None
    assert floor_failure("als", {"ndcg@10": 0.3}, Floor("ndcg@10", math.nan)) is not None
    base_order = Floor("ndcg@10", 0.4, "the candidates' base order")
    reason = floor_failure("reranker", {"ndcg@10": 0.39}, base_order)
    assert reason == "ndcg@10 0.39 is below the candidates' base order 0.4"
    assert "popularity" in str(floor_failure("als", {"ndcg@10": 0.1}, FLOOR))
    assert floor_failure("als", {"ndcg@10": 0.3, "note": "x"}, FLOOR) is not None


async def test_bad_names_and_empty_directories_spend_no_version(
    registry: Registry, stores: Stores, fitted: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRequest):
        await publish(registry, fitted, kind="../etc")
    with pytest.raises(InvalidRequest):
        await registry.publish(
            "../x", "als", fitted, config={}, window={}, metrics={"ndcg@10": 1.0}, floor=FLOOR
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no model files"):
        await publish(registry, tmp_path / "empty")
    assert (await publish(registry, fitted)).version == 1


# --- serving, pins, rollback -------------------------------------------------------------------


async def test_a_pin_wins_over_newer_versions_until_unpinned(
    registry: Registry, stores: Stores, fitted: Path
) -> None:
    v1 = await publish(registry, fitted)
    await publish(registry, fitted)
    before = await models_version(stores)
    assert await registry.pin(SHOP, "als", 1) == v1
    assert (await registry.serving(SHOP))["als"] == v1
    assert await models_version(stores) == before + 1
    v3 = await publish(registry, fitted)
    assert (await registry.serving(SHOP))["als"] == v1
    assert await registry.pins(SHOP) == {"als": 1}
    assert await registry.unpin(SHOP, "als") == v3
    assert (await registry.serving(SHOP))["als"] == v3
    assert await registry.pins(SHOP) == {}
    assert await models_version(stores) == before + 3


async def test_only_published_versions_can_be_pinned(registry: Registry, fitted: Path) -> None:
    await publish(registry, fitted)
    with pytest.raises(ModelRejected):
        await publish(registry, fitted, ndcg=0.1)
    with pytest.raises(InvalidRequest, match="rejected"):
        await registry.pin(SHOP, "als", 2)
    with pytest.raises(NotFound):
        await registry.pin(SHOP, "als", 3)
    with pytest.raises(NotFound):
        await registry.pin(SHOP, "ease", 1)
    assert await registry.pins(SHOP) == {}


async def test_rollback_pins_the_previous_published_version(
    registry: Registry, stores: Stores, fitted: Path
) -> None:
    v1 = await publish(registry, fitted)
    with pytest.raises(ModelRejected):
        await publish(registry, fitted, ndcg=0.1)
    v3 = await publish(registry, fitted)
    v4 = await publish(registry, fitted)
    assert await registry.rollback(SHOP, "als") == v3
    assert (await registry.serving(SHOP))["als"] == v3
    before = await models_version(stores)
    assert await registry.rollback(SHOP, "als") == v1  # the rejected v2 is skipped
    assert await registry.pins(SHOP) == {"als": 1}
    assert await models_version(stores) == before + 1
    with pytest.raises(InvalidRequest, match="nothing to roll back to"):
        await registry.rollback(SHOP, "als")
    assert (await registry.serving(SHOP))["als"] == v1
    await registry.unpin(SHOP, "als")
    assert (await registry.serving(SHOP))["als"] == v4


async def test_rollback_without_an_earlier_version_is_an_error(
    registry: Registry, fitted: Path
) -> None:
    with pytest.raises(NotFound):
        await registry.rollback(SHOP, "als")
    v1 = await publish(registry, fitted)
    with pytest.raises(InvalidRequest):
        await registry.rollback(SHOP, "als")
    assert await registry.pins(SHOP) == {}
    assert (await registry.serving(SHOP))["als"] == v1


# --- fetch -------------------------------------------------------------------------------------


async def test_fetch_round_trips_the_files(
    registry: Registry, stores: Stores, root: str, fitted: Path, tmp_path: Path
) -> None:
    row = await publish(registry, fitted)
    # Loading reads the row's URL, not the registry's root: another registry can fetch it.
    elsewhere = Registry(stores, str(tmp_path / "another-root"))
    into = await elsewhere.fetch(row, tmp_path / "loaded")
    assert into == tmp_path / "loaded"
    assert {p.name: p.read_bytes() for p in into.iterdir()} == FILES


async def test_fetch_of_a_rejected_or_lost_artifact_fails(
    registry: Registry, root: str, fitted: Path, tmp_path: Path
) -> None:
    row = await publish(registry, fitted)
    with pytest.raises(ModelRejected) as info:
        await publish(registry, fitted, ndcg=0.0)
    with pytest.raises(InvalidRequest):
        await registry.fetch(info.value.row, tmp_path / "rejected")
    for path in artifact_dir(root, "als", 1).iterdir():
        path.unlink()
    artifact_dir(root, "als", 1).rmdir()
    with pytest.raises(NotFound, match="missing"):
        await registry.fetch(row, tmp_path / "lost")
