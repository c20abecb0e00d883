"""Redis backend for hot state: visitor sessions, popularity counters, rate limits."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ingest import keys, session
from ingest import popularity as pop
from ingest.errors import StoreUnavailable
from ingest.records import Shop, StoredEvent, Visitor
from ingest.stores.base import Hit, ShopStore
from ingest.stores.redis_script import ReadScript


def connect(url: str, max_connections: int = 128) -> aioredis.Redis:
    """A client whose retry policy is declared once: a couple of quick reconnect attempts on
    connection errors and timeouts, then StoreUnavailable, so ingest answers 503 within a
    fraction of a second instead of hanging while Redis is down. The pool blocks (briefly)
    when every connection is busy rather than failing a burst of concurrent requests."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=2.0,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: closing one closes both


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable("redis", exc) from exc


class RedisHealth:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client

    async def ping(self) -> None:
        async with translated():
            await self._r.ping()


# One script per batch instead of a pipeline of ~3 commands per event: the client-side cost
# of redis-py per command dominated ingest's CPU time (see docs/benchmarks.md).
_RECORD_SESSION = """#!lua
-- KEYS: visitor hash, recent-views list, cart set; ARGV[1]: the change as JSON
local d = cjson.decode(ARGV[1])
local ttl = d.ttl
local current = redis.call("HGET", KEYS[1], "state")
if d.fields.state == "pending" and (current == "guest" or current == "authenticated") then
  -- A pending batch that finished after its client's consent: the session stays consented.
  d.fields.state = nil
  ttl = math.max(ttl, redis.call("TTL", KEYS[1]))
end
for _, product in ipairs(d.views) do
  redis.call("LREM", KEYS[2], 0, product)
  redis.call("LPUSH", KEYS[2], product)
end
redis.call("LTRIM", KEYS[2], 0, d.limit - 1)
for _, op in ipairs(d.cart) do
  if op[1] == "set" then redis.call("DEL", KEYS[3]) end
  if #op[2] > 0 then
    redis.call(op[1] == "remove" and "SREM" or "SADD", KEYS[3], unpack(op[2]))
  end
end
for name, value in pairs(d.fields) do redis.call("HSET", KEYS[1], name, value) end
for i = 1, 3 do redis.call("EXPIRE", KEYS[i], ttl) end
return 1
"""

# Check and hold in one step, so a consent marked concurrently (RedisVisitors.consent) is
# either seen here or reads what is held.
_HOLD_PENDING = """#!lua
-- KEYS: visitor hash, pending hash; ARGV[1]: JSON {"events": {id: event}, "ttl": seconds}
local state = redis.call("HGET", KEYS[1], "state")
if state == "guest" or state == "authenticated" then return 0 end
local d = cjson.decode(ARGV[1])
for id, event in pairs(d.events) do redis.call("HSET", KEYS[2], id, event) end
redis.call("EXPIRE", KEYS[2], d.ttl)  -- sliding: activity keeps a pending session alive
return 1
"""

_CONSENT = """#!lua
-- KEYS: visitor hash, pending hash; ARGV: state, session TTL in seconds
redis.call("HSET", KEYS[1], "state", ARGV[1])
redis.call("EXPIRE", KEYS[1], ARGV[2])
return redis.call("HVALS", KEYS[2])
"""

# Serving reads a visitor (and their customer) in one command; a pipeline of six commands
# cost several times more client-side CPU (docs/benchmarks.md).
_READ_VISITORS = """#!lua flags=no-writes
-- KEYS: per visitor, its hash, recent-views list and cart set
local out = {}
for i = 1, #KEYS, 3 do
  out[#out + 1] = redis.call("HGETALL", KEYS[i])
  out[#out + 1] = redis.call("LRANGE", KEYS[i + 1], 0, -1)
  out[#out + 1] = redis.call("SMEMBERS", KEYS[i + 2])
end
return out
"""

_ADD_POPULARITY = """#!lua
-- KEYS: sorted sets; ARGV[1]: JSON {"incr": [[key index, product, amount]],
--                                   "expire": [[key index, unix time]]}
local d = cjson.decode(ARGV[1])
for _, x in ipairs(d.incr) do redis.call("ZINCRBY", KEYS[x[1]], x[3], x[2]) end
for _, x in ipairs(d.expire) do redis.call("EXPIREAT", KEYS[x[1]], x[2]) end
return 1
"""


class RedisVisitors:
    def __init__(self, client: aioredis.Redis, prefix: str, url: str) -> None:
        """`url`: the same Redis, for the lookup's own connections (redis_script.py)."""
        self._r = client
        self._prefix = prefix
        self._record = client.register_script(_RECORD_SESSION)
        self._hold = client.register_script(_HOLD_PENDING)
        self._consent = client.register_script(_CONSENT)
        self._read = ReadScript(url, _READ_VISITORS)

    def _keys(self, shop_id: str, client_id: str) -> dict[str, str]:
        return {
            kind: keys.key(self._prefix, shop_id, kind, client_id)
            for kind in (keys.VISITOR, keys.RECENT, keys.CART, keys.PENDING)
        }

    async def record(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, state: str, ttl_s: int
    ) -> None:
        d = session.delta(events)
        k = self._keys(shop_id, client_id)
        fields: dict[str, str] = {"state": state}
        if d.last_seen is not None:
            fields["last_seen"] = d.last_seen.isoformat()
        if d.customer_id:
            fields["customer_id"] = d.customer_id
        change = {
            "views": d.viewed,
            "limit": session.RECENT_LIMIT,
            "cart": [[op, list(products)] for op, products in d.cart_ops],
            "fields": fields,
            "ttl": ttl_s,
        }
        async with translated():
            await self._record(
                keys=[k[keys.VISITOR], k[keys.RECENT], k[keys.CART]], args=[json.dumps(change)]
            )

    async def get(self, shop_id: str, client_id: str) -> Visitor:
        return (await self.get_many(shop_id, [client_id]))[0]

    async def get_many(self, shop_id: str, client_ids: Sequence[str]) -> list[Visitor]:
        keys_ = [
            k
            for client_id in client_ids
            for k in (
                keys.key(self._prefix, shop_id, keys.VISITOR, client_id),
                keys.key(self._prefix, shop_id, keys.RECENT, client_id),
                keys.key(self._prefix, shop_id, keys.CART, client_id),
            )
        ]
        replies = await self._read(keys_)  # StoreUnavailable when Redis cannot answer
        out = []
        for n, client_id in enumerate(client_ids):
            fields, recent, cart = replies[3 * n : 3 * n + 3]
            info = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
            last_seen = info.get("last_seen")
            out.append(
                Visitor(
                    client_id=client_id,
                    recent_views=tuple(p.decode() for p in recent),
                    cart=frozenset(p.decode() for p in cart),
                    last_seen=datetime.fromisoformat(last_seen) if last_seen else None,
                    customer_id=info.get("customer_id"),
                    privacy_state=info.get("state"),
                )
            )
        return out

    async def hold_pending(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, ttl_s: int
    ) -> bool:
        k = self._keys(shop_id, client_id)
        change = {"events": {e.event_id: e.to_json() for e in events}, "ttl": ttl_s}
        async with translated():
            held = await self._hold(
                keys=[k[keys.VISITOR], k[keys.PENDING]], args=[json.dumps(change)]
            )
        return bool(held)

    async def consent(
        self, shop_id: str, client_id: str, state: str, *, ttl_s: int
    ) -> list[StoredEvent]:
        k = self._keys(shop_id, client_id)
        async with translated():
            values = await self._consent(
                keys=[k[keys.VISITOR], k[keys.PENDING]], args=[state, ttl_s]
            )
        return _oldest_first(values)

    async def pending(self, shop_id: str, client_id: str) -> list[StoredEvent]:
        async with translated():
            values = await self._r.hvals(self._keys(shop_id, client_id)[keys.PENDING])
        return _oldest_first(values)

    async def drop_pending(self, shop_id: str, client_id: str) -> None:
        async with translated():
            await self._r.delete(self._keys(shop_id, client_id)[keys.PENDING])

    async def forget(self, shop_id: str, client_id: str) -> None:
        async with translated():
            await self._r.delete(*self._keys(shop_id, client_id).values())

    async def close(self) -> None:
        await self._read.close()


def _oldest_first(values: Sequence[bytes | str]) -> list[StoredEvent]:
    return sorted((StoredEvent.from_json(v) for v in values), key=lambda e: e.occurred_at)


class RedisPopularity:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._prefix = prefix
        self._add = client.register_script(_ADD_POPULARITY)

    def _key(self, shop_id: str, signal: str, window: str, epoch: int) -> str:
        return keys.key(self._prefix, shop_id, keys.POPULARITY, signal, window, epoch)

    async def add(self, shop_id: str, hits: Sequence[Hit]) -> None:
        increments: dict[tuple[str, str, int], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        for hit in hits:
            for window, half_life in pop.WINDOWS.items():
                epoch, value = pop.scaled(hit.weight, hit.at.timestamp(), half_life)
                increments[(hit.signal, window, epoch)][hit.product_id] += value
        if not increments:
            return
        zkeys: list[str] = []
        change: dict[str, list[list[object]]] = {"incr": [], "expire": []}
        for (signal, window, epoch), products in increments.items():
            zkeys.append(self._key(shop_id, signal, window, epoch))
            index = len(zkeys)  # Lua counts from 1
            change["incr"] += [[index, product, value] for product, value in products.items()]
            # A key is read while its epoch is current or the previous one, then it can go.
            expire_at = int(pop.epoch_base(epoch + 2, pop.WINDOWS[window])) + 1
            change["expire"].append([index, expire_at])
        async with translated():
            await self._add(keys=zkeys, args=[json.dumps(change)])

    async def top(
        self, shop_id: str, signal: str, window: str, k: int, now: datetime
    ) -> list[tuple[str, float]]:
        half_life = pop.WINDOWS[window]
        now_s = now.timestamp()
        current = pop.epoch(now_s, half_life)
        cur_key = self._key(shop_id, signal, window, current)
        prev_key = self._key(shop_id, signal, window, current - 1)
        async with translated():
            if not await self._r.exists(prev_key):
                rows: list[Any] = await self._r.zrevrange(cur_key, 0, k - 1, withscores=True)
            else:
                # Previous-epoch scores are relative to that epoch's base: rescale them.
                weight = 2.0**-pop.EPOCH_HALF_LIVES
                rows = await self._r.zunion({cur_key: 1.0, prev_key: weight}, withscores=True)
        ranked = sorted(((p.decode(), s) for p, s in rows), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [(p, pop.decayed(s, current, now_s, half_life)) for p, s in ranked]


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._prefix = prefix

    async def take(self, shop_id: str, n: int, limit_per_s: int, now: datetime) -> float | None:
        second = int(now.timestamp())
        key = keys.key(self._prefix, shop_id, keys.RATE, second)
        pipe = self._r.pipeline(transaction=True)
        pipe.incrby(key, n)
        pipe.expire(key, 2)
        async with translated():
            used, _ = await pipe.execute()
        if int(used) > limit_per_s:
            return (second + 1) - now.timestamp()
        return None


class MirroredShops:
    """Shops live in PostgreSQL and are mirrored into Redis on every write, and on a read that
    missed. Ingest reads the mirror first, so a replica started during a PostgreSQL outage can
    still authenticate shops and keep accepting events."""

    def __init__(self, primary: ShopStore, client: aioredis.Redis, prefix: str) -> None:
        self._primary = primary
        self._r = client
        self._prefix = prefix

    def _key(self, shop_id: str) -> str:
        return keys.key(self._prefix, shop_id, keys.SHOP)

    async def _mirror(self, shop: Shop) -> None:
        async with translated():
            await self._r.set(self._key(shop.shop_id), _shop_json(shop))

    async def create_shop(self, shop: Shop) -> None:
        await self._primary.create_shop(shop)
        await self._mirror(shop)

    async def save_shop(self, shop: Shop) -> None:
        await self._primary.save_shop(shop)
        await self._mirror(shop)

    async def get_shop(self, shop_id: str) -> Shop | None:
        with contextlib.suppress(RedisError, OSError):
            raw = await self._r.get(self._key(shop_id))
            if raw is not None:
                return _shop_from_json(raw)
        shop = await self._primary.get_shop(shop_id)
        if shop is not None:
            with contextlib.suppress(StoreUnavailable):
                await self._mirror(shop)
        return shop

    async def list_shops(self) -> list[Shop]:
        return await self._primary.list_shops()


def _shop_json(shop: Shop) -> str:
    d = asdict(shop)
    for name in _SHOP_TIMES:
        d[name] = d[name].isoformat() if d[name] else None
    return json.dumps(d)


def _shop_from_json(raw: bytes | str) -> Shop:
    d = json.loads(raw)
    for name in _SHOP_TIMES:
        d[name] = datetime.fromisoformat(d[name]) if d.get(name) else None
    return Shop(**d)


_SHOP_TIMES = ("created_at", "previous_key_expires_at", "uninstalled_at")
