"""The hot-path script reader (ingest/stores/redis_script.py) against real Redis, plus two
misbehaving servers made here: one that never answers, one that answers slowly."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from ingest.errors import StoreUnavailable
from ingest.stores.redis_script import ReadScript

ECHO = "return {KEYS[1], redis.call('GET', KEYS[1])}"


@pytest.fixture
async def key(redis_url: str) -> AsyncIterator[str]:
    name = f"novatest-script-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    await client.set(name, "value")
    yield name
    await client.delete(name)
    await client.aclose()


async def test_runs_the_script_and_reloads_it_after_a_flush(redis_url: str, key: str) -> None:
    read = ReadScript(redis_url, ECHO)
    try:
        assert await read([key]) == [key.encode(), b"value"]
        admin = aioredis.Redis.from_url(redis_url)
        await admin.script_flush()  # what a restarted Redis looks like to EVALSHA
        assert await read([key]) == [key.encode(), b"value"]
        assert await admin.script_exists(read._sha) == [True]
        await admin.aclose()
    finally:
        await read.close()


async def test_a_connection_killed_by_the_server_is_replaced(redis_url: str, key: str) -> None:
    name = f"novatest-{uuid.uuid4().hex[:8]}"
    read = ReadScript(redis_url, ECHO, client_name=name)
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await read([key])
        ours = [c["id"] for c in await admin.client_list() if c["name"] == name]
        assert len(ours) == 1
        await admin.client_kill_filter(_id=ours[0])
        assert await read([key]) == [key.encode(), b"value"]  # retried on a fresh connection
        assert [c["id"] for c in await admin.client_list() if c["name"] == name] != ours
    finally:
        await admin.aclose()
        await read.close()


async def test_an_unreachable_redis_is_store_unavailable_quickly() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    read = ReadScript(f"redis://127.0.0.1:{port}/0", ECHO)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await read(["k"])
    assert time.monotonic() - started < 1.0
    await read.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A local server running `handler` per connection; yields its redis:// URL."""
    tasks: list[asyncio.Task[None]] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass

    async with serving(silent) as url:
        read = ReadScript(url, ECHO, timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await read(["k"])
        # Two attempts of 0.2 s each, not a hang.
        assert time.monotonic() - started < 1.5
        await read.close()


async def test_a_cancelled_call_leaves_no_reply_behind_for_the_next() -> None:
    """The reply to a call cancelled mid-flight must never be read as the next call's."""
    served = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers the connection's handshake at once and each script call, numbered, late."""
        nonlocal served
        while True:
            header = await reader.readline()  # *<n>, then n bulk strings: $<len>, the bytes
            if not header:
                return
            args = []
            for _ in range(int(header[1:])):
                size = int((await reader.readline())[1:])
                args.append((await reader.readexactly(size + 2))[:-2])
            if args[0].upper() != b"EVALSHA":
                writer.write(b"+OK\r\n")
                continue
            served += 1
            await asyncio.sleep(0.2)
            writer.write(f":{served}\r\n".encode())

    async with serving(slow) as url:
        read = ReadScript(url, ECHO)
        first = asyncio.create_task(read(["k"]))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await read(["k"]) == 2  # its own reply, not the cancelled first call's
        await read.close()


async def test_concurrent_calls_on_one_connection_get_their_own_replies(redis_url: str) -> None:
    admin = aioredis.Redis.from_url(redis_url)
    names = [f"novatest-script-{uuid.uuid4().hex[:8]}" for _ in range(50)]
    await admin.mset({name: f"value-{n}" for n, name in enumerate(names)})
    read = ReadScript(redis_url, ECHO)
    try:
        replies = await asyncio.gather(*(read([name]) for name in names))
        assert replies == [[name.encode(), f"value-{n}".encode()] for n, name in enumerate(names)]
    finally:
        await read.close()
        await admin.delete(*names)
        await admin.aclose()


async def test_the_database_in_the_url_is_selected(redis_url: str) -> None:
    other = redis_url.rsplit("/", 1)[0] + "/3"
    admin = aioredis.Redis.from_url(other)
    name = f"novatest-script-{uuid.uuid4().hex[:8]}"
    await admin.set(name, "in-db-3")
    read = ReadScript(other, ECHO)
    try:
        assert await read([name]) == [name.encode(), b"in-db-3"]
    finally:
        await read.close()
        await admin.delete(name)
        await admin.aclose()


async def test_a_refused_handshake_is_store_unavailable(redis_url: str) -> None:
    """A password Redis does not expect: its refusal is the error, not a hang."""
    with_password = redis_url.replace("redis://", "redis://:not-the-password@", 1)
    read = ReadScript(with_password, ECHO)
    with pytest.raises(StoreUnavailable, match="AUTH"):
        await read(["k"])
    await read.close()


async def test_too_many_calls_in_flight_fail_at_once() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):  # reads, never answers
            pass

    async with serving(silent) as url:
        read = ReadScript(url, ECHO, max_in_flight=1, client_name="")
        first = asyncio.create_task(read(["k"]))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="in flight"):
            await read(["k"])
        assert time.monotonic() - started < 0.5
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await read.close()
