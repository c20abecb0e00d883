"""`nova catalog sync` on both backends: from a JSONL export file, a product CSV, and Shopify
(through the BulkExportClient interface, replaying a recorded export)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import new_shop_domain
from support.shopify import fixture_path, lines

from config.settings import load_settings
from deployments import cli
from ingest import shops
from ingest.stores import open_stores


@pytest.fixture
def env(backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in backend_env.items():
        monkeypatch.setenv(name, value)
    return backend_env


def create_shop(env: dict[str, str]) -> str:
    async def _create() -> str:
        stores = await open_stores(load_settings(env))
        try:
            shop = await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))
            return shop.shop_id
        finally:
            await stores.close()

    return asyncio.run(_create())


def product_ids(env: dict[str, str], shop: str) -> set[str]:
    async def _list() -> set[str]:
        stores = await open_stores(load_settings(env), migrate=False)
        try:
            return {p.id for p in await stores.catalog.list_products(shop)}
        finally:
            await stores.close()

    return asyncio.run(_list())


def test_sync_from_a_jsonl_export_and_a_csv(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    shop = create_shop(env)
    assert (
        cli.main(["catalog", "sync", shop, "--jsonl", str(fixture_path("bulk_products.jsonl"))])
        == 0
    )
    out = capsys.readouterr().out
    assert f"{shop}: imported 3 products and 2 collections" in out
    assert "skipped line 8: not a JSON object" in out and "skipped line 12:" in out
    assert product_ids(env, shop) == {"7100000000001", "7100000000002", "7100000000003"}

    assert (
        cli.main(["catalog", "sync", shop, "--csv", str(fixture_path("products_export.csv"))]) == 0
    )
    out = capsys.readouterr().out
    assert "imported 3 products" in out and "skipped broken-price: not a price" in out
    assert "handle:new-canvas-tote" in product_ids(env, shop)


def test_csv_with_a_byte_order_mark(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = create_shop(env)
    path = tmp_path / "products_export.csv"
    path.write_text("\ufeff" + "".join(lines("products_export.csv")), encoding="utf-8")
    assert cli.main(["catalog", "sync", shop, "--csv", str(path)]) == 0
    assert "imported 3 products" in capsys.readouterr().out


class RecordedExport:
    """Stands in for ShopifyBulkClient behind the same interface: a recorded export."""

    tokens: ClassVar[list[str]] = []

    def __init__(self, access_token: str) -> None:
        RecordedExport.tokens.append(access_token)

    async def export_lines(self, shop_id: str) -> AsyncIterator[str]:
        for line in lines("bulk_products.jsonl"):
            yield line


def test_sync_from_shopify_reads_the_token_from_the_environment(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = create_shop(env)
    monkeypatch.setattr(cli, "ShopifyBulkClient", RecordedExport)
    monkeypatch.delenv("SHOPIFY_ADMIN_TOKEN", raising=False)
    assert cli.main(["catalog", "sync", shop, "--from-shopify"]) == 2
    assert "SHOPIFY_ADMIN_TOKEN" in capsys.readouterr().err

    monkeypatch.setenv("MY_TOKEN", "shpat_recorded")
    assert cli.main(["catalog", "sync", shop, "--from-shopify", "--token-env", "MY_TOKEN"]) == 0
    assert RecordedExport.tokens[-1] == "shpat_recorded"
    assert "imported 3 products and 2 collections" in capsys.readouterr().out
    assert len(product_ids(env, shop)) == 3


def test_sync_refuses_unknown_shops_missing_files_and_no_source(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    export = str(fixture_path("bulk_products.jsonl"))
    assert cli.main(["catalog", "sync", new_shop_domain(), "--jsonl", export]) == 1
    assert "NotFound" in capsys.readouterr().err
    assert cli.main(["catalog", "sync", "not-a-shop", "--jsonl", export]) == 2
    shop = create_shop(env)
    assert cli.main(["catalog", "sync", shop, "--jsonl", "/nonexistent/export.jsonl"]) == 2
    assert "No such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["catalog", "sync", shop])
    assert exit_info.value.code == 2
    assert product_ids(env, shop) == set()
