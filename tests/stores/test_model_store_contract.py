"""ModelStore (the model registry's rows and pins), on the embedded and the production backend."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import new_shop_domain

from config.settings import Settings
from ingest.errors import AlreadyExists, NotFound
from ingest.records import ModelRow
from ingest.stores import open_stores
from ingest.stores.base import Stores

NOW = datetime.now(UTC).replace(microsecond=123456)


def model(shop: str, kind: str, version: int, status: str = "published", **kw: object) -> ModelRow:
    published = status == "published"
    fields: dict[str, object] = {
        "shop_id": shop,
        "kind": kind,
        "version": version,
        "status": status,
        "config": {"factors": 64, "nested": {"alpha": 0.5, "tags": ["a", "b"]}},
        "data_window": {"from": "2026-01-01T00:00:00+00:00", "interactions": 1200},
        "metrics": {"ndcg@10": 0.30000000000000004, "recall@20": 0.5, "missing": None},
        "created_at": NOW + timedelta(minutes=version),
        "artifact_uri": f"file:///models/{shop}/{kind}/v{version}" if published else None,
        "reason": None if published else "ndcg@10 0.1 is below the baseline 0.2",
    }
    fields.update(kw)
    return ModelRow(**fields)  # type: ignore[arg-type]


async def test_next_version_counts_per_shop_and_kind(stores: Stores) -> None:
    shop, other = new_shop_domain(), new_shop_domain()
    assert [await stores.models.next_version(shop, "als") for _ in range(3)] == [1, 2, 3]
    assert await stores.models.next_version(shop, "ease") == 1
    assert await stores.models.next_version(other, "als") == 1
    assert await stores.models.next_version(shop, "als") == 4


async def test_next_version_is_safe_under_concurrency(stores: Stores, settings: Settings) -> None:
    """Two independently opened store bundles (two processes' worth of connections) racing."""
    shop = new_shop_domain()
    second = await open_stores(settings)
    try:
        calls = [(stores if i % 2 else second).models.next_version(shop, "als") for i in range(16)]
        got = await asyncio.gather(*calls)
    finally:
        await second.close()
    assert sorted(got) == list(range(1, 17))


async def test_rows_round_trip_newest_first(stores: Stores) -> None:
    shop = new_shop_domain()
    v1 = model(shop, "als", 1)
    v2 = model(shop, "als", 2, status="rejected")
    e1 = model(shop, "ease", 1, created_at=NOW + timedelta(minutes=5))
    for row in (v1, e1, v2):
        await stores.models.add(row)
    await stores.models.add(model(new_shop_domain(), "als", 1))

    assert await stores.models.rows(shop) == [e1, v2, v1]
    assert await stores.models.rows(shop, "als") == [v2, v1]
    assert await stores.models.rows(shop, "reranker") == []
    assert await stores.models.rows(new_shop_domain()) == []
    assert await stores.models.get(shop, "als", 2) == v2
    assert (await stores.models.get(shop, "als", 1)) == v1
    assert await stores.models.get(shop, "als", 3) is None
    assert await stores.models.get(shop, "ease", 2) is None
    got = await stores.models.get(shop, "als", 1)
    assert got is not None and got.created_at == v1.created_at and got.created_at.tzinfo

    with pytest.raises(AlreadyExists):
        await stores.models.add(replace(v1, status="rejected", artifact_uri=None))
    assert await stores.models.get(shop, "als", 1) == v1


async def test_a_published_row_bumps_the_models_version_a_rejected_one_does_not(
    stores: Stores,
) -> None:
    shop = new_shop_domain()
    await stores.models.add(model(shop, "als", 1, status="rejected"))
    assert "models" not in await stores.versions.get(shop)
    await stores.models.add(model(shop, "als", 2))
    assert (await stores.versions.get(shop))["models"] == 1
    await stores.models.add(model(shop, "ease", 1))
    assert (await stores.versions.get(shop))["models"] == 2


async def test_values_json_cannot_hold_are_refused(stores: Stores) -> None:
    shop = new_shop_domain()
    with pytest.raises(ValueError):
        await stores.models.add(model(shop, "als", 1, metrics={"ndcg@10": float("nan")}))
    assert await stores.models.rows(shop) == []


async def test_pins_only_published_versions_and_bump_the_version(stores: Stores) -> None:
    shop = new_shop_domain()
    for row in (
        model(shop, "als", 1),
        model(shop, "als", 2, status="rejected"),
        model(shop, "als", 3),
        model(shop, "ease", 1),
    ):
        await stores.models.add(row)
    before = (await stores.versions.get(shop))["models"]
    assert await stores.models.pins(shop) == {}

    await stores.models.pin(shop, "als", 1)
    await stores.models.pin(shop, "ease", 1)
    assert await stores.models.pins(shop) == {"als": 1, "ease": 1}
    await stores.models.pin(shop, "als", 3)  # a new pin replaces the old one
    assert await stores.models.pins(shop) == {"als": 3, "ease": 1}
    assert (await stores.versions.get(shop))["models"] == before + 3

    for kind, version in (("als", 2), ("als", 4), ("ease", 3), ("reranker", 1)):
        with pytest.raises(NotFound):
            await stores.models.pin(shop, kind, version)
    with pytest.raises(NotFound):
        await stores.models.pin(new_shop_domain(), "als", 1)
    assert await stores.models.pins(shop) == {"als": 3, "ease": 1}
    assert (await stores.versions.get(shop))["models"] == before + 3

    await stores.models.pin(shop, "als", None)
    assert await stores.models.pins(shop) == {"ease": 1}
    assert (await stores.versions.get(shop))["models"] == before + 4
    assert await stores.models.pins(new_shop_domain()) == {}
