"""What the benchmarks run against: fresh production stores (a new PostgreSQL database and
Redis key prefix, dropped afterwards) or an embedded SQLite file; the application on a local
Ray Serve cluster; or the same ASGI app in one plain uvicorn process (bench/plain_app.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from config.settings import Settings, load_settings


@contextmanager
def serve_target(settings: Settings) -> Iterator[int]:
    from deployments import runtime

    running = runtime.start(
        settings, dashboard=False, num_cpus=2, object_store_memory=300 * 1024**2
    )
    try:
        yield int(running.api_url.rsplit(":", 1)[1])
    finally:
        runtime.stop()


@contextmanager
def plain_target(settings: Settings) -> Iterator[int]:
    port = settings.http_port
    env = {**os.environ, **settings.env()}
    proc = subprocess.Popen([sys.executable, "-m", "bench.plain_app", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/v1/events", content=b"{}", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def production_settings(port: int) -> Iterator[Settings]:
    admin = os.environ.get("NOVA_BENCH_DATABASE_URL") or os.environ["NOVA_TEST_DATABASE_URL"]
    redis_url = os.environ.get("NOVA_BENCH_REDIS_URL") or os.environ["NOVA_TEST_REDIS_URL"]
    name = f"nova_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
    prefix = f"novabench-{uuid.uuid4().hex[:6]}"
    models = tempfile.mkdtemp(prefix="nova-bench-models-")
    try:
        yield load_settings(
            {
                "NOVA_MODEL_STORE": models,
                "NOVA_DATABASE_URL": admin.rsplit("/", 1)[0] + "/" + name,
                "NOVA_REDIS_URL": redis_url,
                "NOVA_REDIS_PREFIX": prefix,
                "NOVA_OPERATOR_TOKEN": "bench",
                "NOVA_HTTP_PORT": str(port),
                "NOVA_RATE_LIMIT_EVENTS_PER_S": "1000000000",
                # The benchmarks seed statistics tables directly, with no events behind them:
                # the refresher (every 15 min) would recompute them from the empty event store
                # and serve empty tables from then on, as it did at the end of a long
                # bench:serve run (related answers fell back to content similarity).
                "NOVA_STATS_REFRESH_S": "0",
            }
        )
    finally:
        shutil.rmtree(models, ignore_errors=True)
        asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


async def _admin_sql(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def embedded_settings(port: int, data_dir: Path) -> Settings:
    return load_settings(
        {
            "NOVA_DATA_DIR": str(data_dir),
            "NOVA_OPERATOR_TOKEN": "bench",
            "NOVA_HTTP_PORT": str(port),
            "NOVA_RATE_LIMIT_EVENTS_PER_S": "1000000000",
        }
    )
