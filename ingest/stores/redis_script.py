"""A read-only Lua script run straight on pooled connections, for the storefront's hot path.

Every personalised recommendations request reads its visitor's session state once. redis-py's
client wraps each command in a blocking pool's lock and timeout, a retry policy and its command
dispatch; on the ranking replica that machinery cost about as much CPU as the call itself
(~70 against ~38 µs per call on this 2-core machine, docs/benchmarks.md). This keeps what
matters of redis-py — its connections (hiredis parsing, socket timeouts, reconnecting) and its
plain pool — and drops the rest. The retry policy becomes explicit: a failed connection is
dropped and the call tried once more on another (a restarted Redis leaves stale connections in
the pool), then StoreUnavailable, which the caller turns into a visibly degraded answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ingest.errors import StoreUnavailable

_BROKEN = (RedisConnectionError, RedisTimeoutError, OSError)


class ReadScript:
    def __init__(
        self,
        url: str,
        script: str,
        *,
        max_connections: int = 64,
        connect_timeout_s: float = 1.0,
        timeout_s: float = 2.0,
        client_name: str = "nova-hot-reads",
    ) -> None:
        """`client_name`: how these connections show in Redis's CLIENT LIST."""
        self._pool = aioredis.ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=timeout_s,
            client_name=client_name,
        )
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str]) -> Any:
        for attempt in (1, 2):
            try:
                # A plain pool: when every connection is taken it fails at once instead of
                # queueing the request behind a lock (an answer without history beats a late one).
                conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            except (RedisError, OSError) as exc:
                raise StoreUnavailable("redis", exc) from exc
            try:
                return await self._run(conn, keys)
            except _BROKEN as exc:
                await conn.disconnect()
                if attempt == 2:
                    raise StoreUnavailable("redis", exc) from exc
            except RedisError as exc:
                raise StoreUnavailable("redis", exc) from exc
            finally:
                await self._pool.release(conn)
        raise AssertionError("unreachable")

    async def _run(self, conn: AbstractConnection, keys: Sequence[str]) -> Any:
        try:
            return await _command(conn, "EVALSHA", self._sha, len(keys), *keys)
        except NoScriptError:  # a restarted or flushed Redis: EVAL caches the script again
            return await _command(conn, "EVAL", self._script, len(keys), *keys)

    async def close(self) -> None:
        await self._pool.aclose()


async def _command(conn: AbstractConnection, *args: str | int) -> Any:
    # redis-py's connection drops itself on any error or cancellation mid-command, so a
    # connection released to the pool never holds an unread reply.
    await conn.send_packed_command(conn.pack_command(*args), check_health=False)
    return await conn.read_response()
