"""The durable ingest path under failure, against real PostgreSQL and Redis.

PostgreSQL is reached through a TCP proxy that can cut every connection, as a crash or a
network partition would. Ingest must keep answering 202 (Redis is the buffer) and, after
recovery, the event store must hold exactly the accepted events: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import _clear_redis_prefix, new_shop_domain
from support import pixel
from support.tcpproxy import TcpProxy

from config.settings import Settings, load_settings
from deployments.ingest_app import build_ingest_app
from ingest import shops
from ingest.retry import Backoff
from ingest.service import IngestService
from ingest.stores import open_stores
from ingest.stores.base import Stores
from ingest.stores.redis_log import RedisIngestLog
from ingest.writer import StreamWriter

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_proxy(postgres_url: str) -> TcpProxy:
    target = urlsplit(postgres_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield proxy  # type: ignore[misc]
    proxy.stop()


@pytest.fixture
def proxied_settings(postgres_url: str, redis_url: str, pg_proxy: TcpProxy) -> Settings:
    target = urlsplit(postgres_url)
    via_proxy = target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{pg_proxy.port}")
    prefix = f"novatest-{uuid.uuid4().hex[:8]}"
    yield load_settings(
        {  # type: ignore[misc]
            "NOVA_DATABASE_URL": via_proxy.geturl(),
            "NOVA_REDIS_URL": redis_url,
            "NOVA_REDIS_PREFIX": prefix,
            "NOVA_OPERATOR_TOKEN": "t",
            # Short, so the cached shop expires during the outage and the fallback is exercised.
            "NOVA_SHOP_CACHE_TTL_S": "0.2",
        }
    )
    _clear_redis_prefix(redis_url, prefix)


def writer_for(stores: Stores, consumer: str, **kw: object) -> StreamWriter:
    assert isinstance(stores.admission, RedisIngestLog)
    return StreamWriter(
        stores.admission,
        stores.events,
        consumer,
        read_count=50,
        block_ms=20,
        backoff=Backoff(base_s=0.05, cap_s=0.3),
        **kw,  # type: ignore[arg-type]
    )


async def wait_for(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def test_postgres_outage_loses_nothing_and_stores_nothing_twice(
    proxied_settings: Settings, pg_proxy: TcpProxy
) -> None:
    stores = await open_stores(proxied_settings)
    writer = writer_for(stores, "writer-1")
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    app = build_ingest_app(proxied_settings, IngestService(proxied_settings, stores))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nova.test")
    try:
        shop = await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))
        headers = {"X-Nova-Key": shop.ingest_key}
        sent_ids: set[str] = set()
        accepted = 0

        async def post_batches(n: int) -> None:
            nonlocal accepted
            for _ in range(n):
                events = [pixel.product_viewed(i, client_id=f"c{i % 3}") for i in range(1, 21)]
                sent_ids.update(e["id"] for e in events)
                r = await client.post("/", json=pixel.batch(shop.shop_id, events), headers=headers)
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"]
                await asyncio.sleep(0.01)

        await post_batches(10)
        pg_proxy.cut()
        await post_batches(20)  # PostgreSQL is unreachable: ingest must not notice
        await asyncio.sleep(0.3)  # the shop cache has expired; lookups fail over to it
        await post_batches(10)
        assert not writer.stats.store_up and writer.stats.consecutive_failures > 0
        assert await stores.admission.depth() > 0  # type: ignore[attr-defined]
        pg_proxy.restore()

        await wait_for(lambda: _drained(stores))
        assert accepted == len(sent_ids) == 800
        assert await stores.events.count(shop.shop_id) == accepted
        stored = {e.event_id for e in await stores.events.read(shop.shop_id, limit=10_000)}
        assert stored == sent_ids
        assert writer.stats.store_up and writer.stats.failures > 0
    finally:
        stop.set()
        await task
        await client.aclose()
        await stores.close()


async def _drained(stores: Stores) -> bool:
    return await stores.admission.depth() == 0  # type: ignore[attr-defined,no-any-return]


async def test_entries_of_a_writer_that_died_before_acking_are_claimed_and_deduplicated(
    proxied_settings: Settings,
) -> None:
    stores = await open_stores(proxied_settings)
    try:
        shop = await shops.create_shop(stores.shops, new_shop_domain(), now=datetime.now(UTC))
        service = IngestService(proxied_settings, stores)
        for _ in range(3):
            batch = pixel.batch(shop.shop_id, [pixel.product_viewed(i) for i in range(1, 6)])
            await service.ingest(batch, shop.ingest_key)
        stream = stores.admission
        assert isinstance(stream, RedisIngestLog)
        await stream.ensure_group()
        # Writer A reads and commits, then dies before its ack.
        taken = await stream.read("writer-a", 100, 10, own_pending=False)
        await stores.events.write([e for entry in taken for e in entry.events])
        assert await stores.events.count(shop.shop_id) == 15

        survivor = writer_for(stores, "writer-b", abandoned_after_ms=50)
        await asyncio.sleep(0.1)
        assert await survivor.cycle() == 15
        assert await stream.depth() == 0
        assert await stores.events.count(shop.shop_id) == 15
        assert (survivor.stats.events_written, survivor.stats.events_deduplicated) == (0, 15)
    finally:
        await stores.close()
