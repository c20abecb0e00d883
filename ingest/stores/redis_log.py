"""The durable ingest buffer: a Redis Stream that ingest appends to and the writer drains.

Admission is one Lua script per batch, so deduplication and the append are a single atomic
step: ids already seen are reported as duplicates, the rest are appended as one stream entry and
only then marked seen. If the append fails nothing is marked, and the client's retry is not
mistaken for a duplicate. The `#!lua` shebang makes Redis (>= 7) refuse the script up front when
it is out of memory, instead of failing half way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ingest import keys
from ingest.records import StoredEvent
from ingest.stores.redis_state import translated

_ADMIT = """#!lua
-- KEYS[1]: the stream; KEYS[2..n+1]: the seen-key of each event
-- ARGV: ttl_s, persist (1|0), shop, n_promoted, n event JSONs, n_promoted promoted JSONs
local n = #KEYS - 1
local persist = ARGV[2] == "1"
local n_promoted = tonumber(ARGV[4])
local duplicates, fresh, entry = {}, {}, {}
for i = 1, n do
  if redis.call("EXISTS", KEYS[i + 1]) == 1 then
    duplicates[#duplicates + 1] = i
  else
    fresh[#fresh + 1] = i
    if persist then entry[#entry + 1] = ARGV[4 + i] end
  end
end
for j = 1, n_promoted do entry[#entry + 1] = ARGV[4 + n + j] end
if #entry > 0 then
  local body = "[" .. table.concat(entry, ",") .. "]"
  redis.call("XADD", KEYS[1], "*", "shop", ARGV[3], "events", body)
end
for _, i in ipairs(fresh) do redis.call("SET", KEYS[i + 1], "1", "EX", ARGV[1]) end
return duplicates
"""

WRITER_GROUP = "writers"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: the events one ingest request made durable."""

    entry_id: str
    events: list[StoredEvent]


class RedisIngestLog:
    def __init__(self, client: aioredis.Redis, prefix: str, dedupe_window_s: int) -> None:
        self._r = client
        self._prefix = prefix
        self._window_s = dedupe_window_s
        self._script = client.register_script(_ADMIT)
        self.stream = keys.key(prefix, None, keys.INGEST_STREAM)

    async def admit(
        self,
        shop_id: str,
        events: Sequence[StoredEvent],
        *,
        persist: bool,
        promoted: Sequence[StoredEvent] = (),
    ) -> set[str]:
        if not events and not promoted:
            return set()
        seen_keys = [keys.key(self._prefix, shop_id, keys.SEEN, e.event_id) for e in events]
        args: list[Any] = [self._window_s, "1" if persist else "0", shop_id, len(promoted)]
        args += [e.to_json() for e in events]
        args += [e.to_json() for e in promoted]
        async with translated():
            duplicates = await self._script(keys=[self.stream, *seen_keys], args=args)
        return {events[int(i) - 1].event_id for i in duplicates}

    # The consumer side, used by ingest/writer.py.

    async def ensure_group(self) -> None:
        async with translated():
            try:
                # "0": a group created after events were buffered still sees all of them.
                await self._r.xgroup_create(self.stream, WRITER_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, consumer: str, count: int, block_ms: int, *, own_pending: bool
    ) -> list[Entry]:
        """New entries for this consumer, or (own_pending) those it was given but never acked."""
        async with translated():
            reply: Any = await self._r.xreadgroup(
                WRITER_GROUP,
                consumer,
                {self.stream: "0" if own_pending else ">"},
                count=count,
                block=None if own_pending else block_ms,
            )
        return [_entry(eid, fields) for _, entries in reply or [] for eid, fields in entries]

    async def claim_abandoned(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries another writer read and never acked (it died): take them over."""
        async with translated():
            reply: Any = await self._r.xautoclaim(
                self.stream, WRITER_GROUP, consumer, min_idle_time=min_idle_ms, count=count
            )
        return [_entry(eid, fields) for eid, fields in reply[1] if fields]

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(self.stream, WRITER_GROUP, *entry_ids)
        # Acked entries are deleted: the stream holds exactly what is not yet in PostgreSQL,
        # so its length is the backlog and nothing is ever trimmed unwritten.
        pipe.xdel(self.stream, *entry_ids)
        async with translated():
            await pipe.execute()

    async def depth(self) -> int:
        async with translated():
            return int(await self._r.xlen(self.stream))


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    # The entry id's first part is the Redis server's clock (ms) at XADD: the moment the events
    # became durable. It is their received_at, and the same on every redelivery.
    received_at = datetime.fromtimestamp(int(eid.split("-")[0]) / 1000, tz=UTC)
    events = [
        StoredEvent.from_dict({**d, "received_at": received_at})
        for d in json.loads(fields[b"events"])
    ]
    return Entry(eid, events)
