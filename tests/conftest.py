"""Shared fixtures.

Backends: every behaviour suite runs against the embedded SQLite backend and the production
PostgreSQL + Redis backend. The servers are found through NOVA_TEST_DATABASE_URL and
NOVA_TEST_REDIS_URL (the Makefile passes defaults for the local machine). Without them the
production half skips with the reason; with NOVA_REQUIRE_SERVICES=1 (CI) an unreachable server
is an error and any skipped test fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings, load_settings
from ingest.stores import Stores, open_stores

REQUIRED = os.environ.get("NOVA_REQUIRE_SERVICES") == "1"
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRED and _skipped:
        print(f"\nNOVA_REQUIRE_SERVICES=1 but {len(_skipped)} test(s) skipped: {_skipped[:10]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (NOVA_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# --- servers -----------------------------------------------------------------------------


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty database for this test session on the test server."""
    admin = os.environ.get("NOVA_TEST_DATABASE_URL")
    if not admin:
        unavailable("NOVA_TEST_DATABASE_URL is not set: PostgreSQL tests need a server")
    assert admin is not None
    name = f"nova_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_create_database(admin, name))
    except (OSError, Exception) as exc:
        unavailable(f"PostgreSQL at NOVA_TEST_DATABASE_URL is not usable: {exc}")
    yield _with_database(admin, name)
    asyncio.run(_drop_database(admin, name))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("NOVA_TEST_REDIS_URL")
    if not url:
        unavailable("NOVA_TEST_REDIS_URL is not set: Redis tests need a server")
    assert url is not None
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at NOVA_TEST_REDIS_URL is not usable: {exc}")
    return url


def _clear_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


# --- settings and stores -----------------------------------------------------------------


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"NOVA_DATA_DIR": str(data_dir), "NOVA_OPERATOR_TOKEN": "test-operator", **extra}


def production_env(postgres_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "NOVA_DATABASE_URL": postgres_url,
        "NOVA_REDIS_URL": redis_url,
        "NOVA_REDIS_PREFIX": prefix,
        "NOVA_OPERATOR_TOKEN": "test-operator",
        **extra,
    }


@pytest.fixture(params=["embedded", "production"])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """NOVA_* settings for one backend; production gets its own Redis key prefix."""
    if request.param == "embedded":
        yield embedded_env(tmp_path)
        return
    pg = request.getfixturevalue("postgres_url")
    rd = request.getfixturevalue("redis_url")
    prefix = f"novatest-{uuid.uuid4().hex[:8]}"
    yield production_env(pg, rd, prefix)
    _clear_redis_prefix(rd, prefix)


@pytest.fixture
def make_settings(backend_env: dict[str, str]) -> Any:
    def _make(**overrides: str) -> Settings:
        return load_settings({**backend_env, **overrides})

    return _make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[Stores]:
    opened = await open_stores(settings)
    yield opened
    await opened.close()


def new_shop_domain() -> str:
    return f"t-{uuid.uuid4().hex[:10]}.myshopify.com"
