"""The model registry's admin API (/admin/shops/{shop}/models) on both backends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import new_shop_domain

from config.settings import Settings
from deployments.admin_app import build_admin_app
from ingest import shops as shop_ops
from ingest.stores.base import Stores
from training.registry import Floor, ModelRejected, Registry

AUTH = {"Authorization": "Bearer test-operator"}
FLOOR = Floor(metric="ndcg@10", baseline=0.2)


@pytest.fixture
async def admin(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_admin_app(settings, stores), root_path="/admin")
    async with httpx.AsyncClient(transport=transport, base_url="http://nova.test") as client:
        yield client


@pytest.fixture
async def shop(stores: Stores, settings: Settings, tmp_path: Path) -> str:
    """A shop with als v1, v2 (rejected), v3 and ease v1 in the registry the admin app uses."""
    created = await shop_ops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))
    fitted = tmp_path / "fitted"
    fitted.mkdir()
    (fitted / "config.json").write_text("{}")
    registry = Registry(stores, settings.model_store)
    for kind, ndcg in (("als", 0.3), ("als", 0.1), ("als", 0.25), ("ease", 0.4)):
        with contextlib.suppress(ModelRejected):
            await registry.publish(
                created.shop_id,
                kind,
                fitted,
                config={"kind": kind},
                window={"interactions": 10},
                metrics={"ndcg@10": ndcg},
                floor=FLOOR,
            )
    return created.shop_id


async def test_the_operator_token_is_required(admin: httpx.AsyncClient, shop: str) -> None:
    base = f"/admin/shops/{shop}/models"
    for method, path in (
        ("GET", base),
        ("POST", f"{base}/als/pin"),
        ("DELETE", f"{base}/als/pin"),
        ("POST", f"{base}/als/rollback"),
    ):
        r = await admin.request(method, path, json={"version": 1})
        assert r.status_code == 401, (method, path)
    assert (await admin.get(base, headers=AUTH)).status_code == 200


async def test_list_shows_rows_what_serves_and_pins(admin: httpx.AsyncClient, shop: str) -> None:
    r = await admin.get(f"/admin/shops/{shop}/models", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["serving"] == {"als": 3, "ease": 1}
    assert body["pins"] == {}
    models = {(m["kind"], m["version"]): m for m in body["models"]}
    assert set(models) == {("als", 1), ("als", 2), ("als", 3), ("ease", 1)}
    rejected = models[("als", 2)]
    assert rejected["status"] == "rejected" and rejected["artifact_uri"] is None
    assert "below the popularity baseline" in rejected["reason"]
    assert models[("als", 3)]["metrics"] == {"ndcg@10": 0.25}
    assert models[("als", 3)]["artifact_uri"].endswith(f"/{shop}/als/v3")

    only_ease = await admin.get(f"/admin/shops/{shop}/models?kind=ease", headers=AUTH)
    assert [(m["kind"], m["version"]) for m in only_ease.json()["models"]] == [("ease", 1)]
    unknown = await admin.get(f"/admin/shops/{new_shop_domain()}/models", headers=AUTH)
    assert unknown.status_code == 404


async def test_pin_and_unpin(admin: httpx.AsyncClient, shop: str, stores: Stores) -> None:
    base = f"/admin/shops/{shop}/models/als"
    before = (await stores.versions.get(shop))["models"]
    r = await admin.post(f"{base}/pin", json={"version": 1}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["pinned"] == 1 and r.json()["serving"]["version"] == 1
    listed = (await admin.get(f"/admin/shops/{shop}/models", headers=AUTH)).json()
    assert (listed["serving"]["als"], listed["pins"]) == (1, {"als": 1})
    assert (await stores.versions.get(shop))["models"] == before + 1

    r = await admin.delete(f"{base}/pin", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["pinned"] is None and r.json()["serving"]["version"] == 3
    assert (await stores.versions.get(shop))["models"] == before + 2


async def test_pin_errors(admin: httpx.AsyncClient, shop: str) -> None:
    base = f"/admin/shops/{shop}/models"
    assert (
        await admin.post(f"{base}/als/pin", json={"version": 9}, headers=AUTH)
    ).status_code == 404
    assert (
        await admin.post(f"{base}/knn/pin", json={"version": 1}, headers=AUTH)
    ).status_code == 404
    rejected = await admin.post(f"{base}/als/pin", json={"version": 2}, headers=AUTH)
    assert rejected.status_code == 400 and "rejected" in rejected.json()["description"]
    for body in ({}, {"version": 0}, {"version": "one"}):
        assert (await admin.post(f"{base}/als/pin", json=body, headers=AUTH)).status_code == 400
    assert (await admin.post(f"{base}/als/pin", content=b"{", headers=AUTH)).status_code == 400
    other = f"/admin/shops/{new_shop_domain()}/models/als/pin"
    assert (await admin.post(other, json={"version": 1}, headers=AUTH)).status_code == 404
    listed = (await admin.get(base, headers=AUTH)).json()
    assert listed["pins"] == {} and listed["serving"]["als"] == 3


async def test_rollback(admin: httpx.AsyncClient, shop: str) -> None:
    base = f"/admin/shops/{shop}/models"
    r = await admin.post(f"{base}/als/rollback", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["pinned"] == 1 and r.json()["serving"]["version"] == 1  # v2 was rejected
    again = await admin.post(f"{base}/als/rollback", headers=AUTH)
    assert again.status_code == 400 and "nothing to roll back to" in again.json()["description"]
    assert (await admin.post(f"{base}/ease/rollback", headers=AUTH)).status_code == 400
    assert (await admin.post(f"{base}/reranker/rollback", headers=AUTH)).status_code == 404
    assert (await admin.get(base, headers=AUTH)).json()["serving"] == {"als": 1, "ease": 1}
