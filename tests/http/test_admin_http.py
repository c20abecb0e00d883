"""The operator admin API (/admin) on both backends, and the `nova` CLI that does the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import new_shop_domain
from support import pixel
from support.stores import settle

from config.settings import Settings
from deployments import cli
from deployments.admin_app import build_admin_app
from deployments.ingest_app import build_ingest_app
from ingest.service import IngestService
from ingest.stores.base import Stores

AUTH = {"Authorization": "Bearer test-operator"}


@pytest.fixture
async def admin(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_admin_app(settings, stores), root_path="/admin")
    async with httpx.AsyncClient(transport=transport, base_url="http://nova.test") as client:
        yield client


async def test_operator_token_is_required(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/admin/shops")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await admin.get("/admin/shops", headers=wrong)).status_code == 401
    assert (await admin.get("/admin/shops", headers=AUTH)).status_code == 200


async def test_admin_api_disabled_without_a_token(make_settings: Any, stores: Stores) -> None:
    settings = make_settings()
    disabled = settings.model_copy(update={"operator_token": None})
    transport = httpx.ASGITransport(app=build_admin_app(disabled, stores), root_path="/admin")
    async with httpx.AsyncClient(transport=transport, base_url="http://nova.test") as client:
        r = await client.get("/admin/shops", headers=AUTH)
    assert r.status_code == 403 and "NOVA_OPERATOR_TOKEN" in r.json()["description"]


async def test_create_list_get_and_rotate(
    admin: httpx.AsyncClient, settings: Settings, stores: Stores
) -> None:
    domain = new_shop_domain()
    r = await admin.post("/admin/shops", json={"shop": domain.upper()}, headers=AUTH)
    assert r.status_code == 201
    created = r.json()
    assert created["shop"] == domain and created["ingest_key"].startswith("npk_")
    assert created["require_consent"] is True
    again = await admin.post("/admin/shops", json={"shop": domain}, headers=AUTH)
    assert again.status_code == 409
    bad = await admin.post("/admin/shops", json={"shop": "example.com"}, headers=AUTH)
    assert bad.status_code == 400
    assert (await admin.post("/admin/shops", content=b"{", headers=AUTH)).status_code == 400

    listed = (await admin.get("/admin/shops", headers=AUTH)).json()["shops"]
    assert domain in {s["shop"] for s in listed}
    assert (await admin.get(f"/admin/shops/{domain}", headers=AUTH)).json() == created
    assert (await admin.get(f"/admin/shops/{new_shop_domain()}", headers=AUTH)).status_code == 404

    rotated = await admin.post(
        f"/admin/shops/{domain}/rotate-key", json={"grace_seconds": 0}, headers=AUTH
    )
    assert rotated.status_code == 200
    new_key = rotated.json()["ingest_key"]
    assert new_key != created["ingest_key"] and rotated.json()["previous_key_expires_at"] is None

    # The keys the admin API hands out are the ones ingest accepts.
    ingest = build_ingest_app(settings, IngestService(settings, stores))
    transport = httpx.ASGITransport(app=ingest, root_path="/v1/events")
    async with httpx.AsyncClient(transport=transport, base_url="http://nova.test") as client:
        body = pixel.batch(domain, [pixel.product_viewed(1)])
        old = await client.post(
            "/v1/events", json=body, headers={"X-Nova-Key": created["ingest_key"]}
        )
        new = await client.post("/v1/events", json=body, headers={"X-Nova-Key": new_key})
    assert (old.status_code, new.status_code) == (401, 202)
    await settle(stores)
    assert await stores.events.count(domain) == 1


async def test_health_reports_the_backend(admin: httpx.AsyncClient, stores: Stores) -> None:
    r = await admin.get("/admin/health", headers=AUTH)
    assert r.json() == {"status": "ok", "backend": stores.backend}


def test_cli_creates_lists_and_rotates_shops(
    backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in backend_env.items():
        monkeypatch.setenv(name, value)
    domain = new_shop_domain()
    assert cli.main(["shops", "create", domain, "--no-consent-required"]) == 0
    key = capsys.readouterr().out.split("ingest key ")[1].strip()
    assert key.startswith("npk_")
    assert cli.main(["shops", "create", domain]) == 1
    assert "ShopExists" in capsys.readouterr().err
    assert cli.main(["shops", "create", "not-a-shop"]) == 2
    capsys.readouterr()

    assert cli.main(["shops", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(domain))
    assert key in line and "consent required: False" in line

    assert cli.main(["shops", "rotate-key", domain, "--grace-hours", "2"]) == 0
    out = capsys.readouterr().out
    assert "new ingest key npk_" in out and key not in out.split("new ingest key ")[1]
    until = datetime.fromisoformat(out.split("old key valid until ")[1].strip())
    assert 1.9 * 3600 < (until - datetime.now(UTC)).total_seconds() <= 2 * 3600
    assert cli.main(["shops", "rotate-key", new_shop_domain()]) == 1
    assert cli.main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_names_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOVA_HTTP_PROT", "8000")
    assert cli.main(["shops", "list"]) == 2
    assert "NOVA_HTTP_PROT" in capsys.readouterr().err
