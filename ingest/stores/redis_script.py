"""A read-only Lua script for the storefront's hot path, run over redis_wire's lean connection.

Every personalised recommendations request reads its visitor's session state once, so the
call's own cost matters (redis_wire.py says how much). The retry policy is explicit: a call
that fails on a broken or late connection is tried once more on a fresh one (a restarted Redis
leaves a stale connection behind), then StoreUnavailable, which the caller turns into a
visibly degraded answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ingest.errors import StoreUnavailable
from ingest.stores.redis_wire import RedisWire, ReplyError, pack


class ReadScript:
    def __init__(
        self,
        url: str,
        script: str,
        *,
        max_in_flight: int = 256,
        connect_timeout_s: float = 1.0,
        timeout_s: float = 2.0,
        client_name: str = "nova-hot-reads",
    ) -> None:
        """`client_name`: how the connection shows in Redis's CLIENT LIST. `max_in_flight`:
        beyond it a call fails at once (an answer without history beats a late one)."""
        self._wire = RedisWire(
            url,
            connect_timeout_s=connect_timeout_s,
            timeout_s=timeout_s,
            max_in_flight=max_in_flight,
            client_name=client_name,
        )
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str]) -> Any:
        for attempt in (1, 2):
            try:
                reply = await self._wire.call(pack("EVALSHA", self._sha, len(keys), *keys))
                if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
                    # A restarted or flushed Redis: EVAL caches the script again.
                    reply = await self._wire.call(pack("EVAL", self._script, len(keys), *keys))
            except (ConnectionError, OSError) as exc:
                if attempt == 2:
                    raise StoreUnavailable("redis", exc) from exc
                continue
            except OverflowError as exc:
                raise StoreUnavailable("redis", exc) from exc
            if isinstance(reply, ReplyError):
                raise StoreUnavailable("redis", reply)
            return reply
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._wire.close()
