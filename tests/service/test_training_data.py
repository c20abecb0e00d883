"""What training reads from the event store, on both backends: consented interactions only,
stitched to customers, with erased visitors gone from every input and vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import new_shop_domain
from support import pixel
from support.stores import settle

from config.settings import Settings
from deployments.ranking.cooccurrence import NeighbourTable
from ingest import shops
from ingest.records import Shop
from ingest.service import IngestService
from ingest.shopify.orders import order_event
from ingest.stores.base import Stores
from training import config as training_config
from training import data as data_mod
from training import jobs

NOW = datetime.now(UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
async def shop(stores: Stores) -> Shop:
    return await shops.create_shop(stores.shops, new_shop_domain(), now=NOW, require_consent=True)


@pytest.fixture
def service(settings: Settings, stores: Stores) -> IngestService:
    return IngestService(settings, stores)


async def send(
    service: IngestService,
    shop: Shop,
    client: str,
    events: list[dict[str, object]],
    **kw: object,
) -> None:
    for e in events:
        e["clientId"] = client
    result = await service.ingest(pixel.batch(shop.shop_id, events, **kw), shop.ingest_key)
    assert not result.rejections


async def export(stores: Stores, shop: Shop) -> dict[str, list[object]]:
    table = await stores.training.interactions(shop.shop_id, EPOCH, NOW + timedelta(days=1))
    return table.to_pydict()


async def test_only_consented_interactions_are_exported_with_kinds(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    await send(
        service,
        shop,
        "guest-1",
        [
            pixel.product_viewed(101),
            pixel.added_to_cart(102),
            pixel.checkout_completed([(103, 1), (104, 2)]),
            pixel.recommendation_clicked("r.abc", 105, 1),
            pixel.envelope("page_viewed", {}),
        ],
    )
    await send(service, shop, "pending-1", [pixel.product_viewed(201)], analytics=None)
    await send(service, shop, "refused-1", [pixel.product_viewed(301)], analytics=False)
    await settle(stores)

    rows = await export(stores, shop)
    pairs = sorted(zip(rows["user"], rows["product_id"], rows["kind"], strict=True))
    assert pairs == [
        ("guest-1", "101", "view"),
        ("guest-1", "102", "cart"),
        ("guest-1", "103", "purchase"),
        ("guest-1", "104", "purchase"),
        ("guest-1", "105", "click"),
    ]
    assert rows["ranking_id"][rows["kind"].index("click")] == "r.abc"
    assert set(rows["device"]) == {"mobile"}
    assert all(abs(t - NOW.timestamp()) < 600 for t in rows["ts"])  # type: ignore[operator]


async def test_a_client_linked_to_a_customer_is_one_shopper(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    await send(service, shop, "phone", [pixel.product_viewed(101)])  # before logging in
    await send(service, shop, "phone", [pixel.product_viewed(102)], customer_id=77)
    await send(service, shop, "laptop", [pixel.product_viewed(103)], customer_id=77)
    await settle(stores)
    rows = await export(stores, shop)
    assert set(rows["user"]) == {"customer:77"}
    assert sorted(rows["product_id"]) == ["101", "102", "103"]  # type: ignore[type-var]


async def test_baskets_count_an_order_once_and_keep_anonymous_orders(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    checkout = pixel.checkout_completed([(101, 1), (102, 1)], order_id=555)
    await send(service, shop, "guest-1", [checkout])
    webhook = {
        "id": 555,
        "created_at": NOW.isoformat(),
        "line_items": [{"product_id": 101, "quantity": 1}, {"product_id": 102, "quantity": 1}],
    }
    other = {
        "id": 556,
        "created_at": NOW.isoformat(),
        "line_items": [{"product_id": 103, "quantity": 1}, {"product_id": 104, "quantity": 3}],
    }
    await stores.events.write(
        [order_event(shop.shop_id, webhook), order_event(shop.shop_id, other)]
    )
    await settle(stores)
    table = await stores.training.baskets(shop.shop_id, EPOCH, NOW + timedelta(days=1))
    baskets: dict[str, set[str]] = {}
    for b, p in zip(
        table.column("basket").to_pylist(), table.column("product_id").to_pylist(), strict=True
    ):
        baskets.setdefault(b, set()).add(p)
    assert sorted(baskets.values(), key=sorted) == [{"101", "102"}, {"103", "104"}]
    assert await stores.training.count(shop.shop_id, EPOCH, NOW + timedelta(days=1)) == 3


async def test_impressions_list_the_shown_products_in_order(
    service: IngestService, stores: Stores, shop: Shop
) -> None:
    await send(service, shop, "guest-1", [pixel.recommendation_viewed("r.x", [104, 102, 103])])
    await settle(stores)
    table = await stores.training.impressions(shop.shop_id, EPOCH, NOW + timedelta(days=1))
    assert table.column("ranking_id").to_pylist() == ["r.x"]
    assert table.column("user").to_pylist() == ["guest-1"]
    assert table.column("products").to_pylist() == [["104", "102", "103"]]


async def test_an_erased_visitor_leaves_the_training_inputs_and_the_models(
    service: IngestService, stores: Stores, shop: Shop, settings: Settings, tmp_path: Path
) -> None:
    """Erase a visitor, retrain: their interactions are absent from the model's inputs and
    their client id from every vocabulary and artifact."""
    rng = np.random.default_rng(3)
    for n in range(60):
        group = [101, 102, 103, 104] if n % 2 else [201, 202, 203, 204]
        picks = rng.choice(group, size=3, replace=False)
        await send(service, shop, f"shopper-{n:02d}", [pixel.product_viewed(int(p)) for p in picks])
    forgotten = "shopper-to-forget-7f3a"
    await send(service, shop, forgotten, [pixel.product_viewed(p) for p in (101, 202, 301)])
    await settle(stores)
    config = training_config.load()
    # The events carry the wall clock's time when sent, and NOW was read when the module was
    # imported, possibly many minutes before in a long run: the window ends after both.
    until = datetime.now(UTC) + timedelta(minutes=5)
    before = await data_mod.load(stores, shop.shop_id, config.data, until)
    assert forgotten in before.events.column("user").to_pylist()

    deleted = await stores.events.erase_visitor(shop.shop_id, forgotten)
    assert deleted == 3
    after = await data_mod.load(stores, shop.shop_id, config.data, until)
    assert forgotten not in after.events.column("user").to_pylist()
    assert after.events.num_rows == before.events.num_rows - 3
    matrix = data_mod.interactions(after.events, config.data, until.timestamp())
    assert forgotten not in matrix.users.tolist()
    assert "301" not in matrix.items.tolist()  # only the erased visitor ever touched it

    local = config.model_copy(update={"ray": config.ray.model_copy(update={"num_workers": 0})})
    store_dir = tmp_path / "models"
    fit_settings = settings.model_copy(update={"model_store": str(store_dir)})
    report = await jobs.fit_with_stores(stores, fit_settings, local, shop.shop_id)
    assert report.published, report.as_dict()
    files = [p for p in store_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:  # numpy stores text as UTF-32: look for both spellings
        content = path.read_bytes()
        assert forgotten.encode() not in content, path
        assert forgotten.encode("utf-32-le") not in content, path
    for path in store_dir.rglob("neighbours.npz"):
        table = NeighbourTable.from_bytes(path.read_bytes())
        assert "301" not in table.product_ids.tolist()
        assert len(table.product_ids) > 0
