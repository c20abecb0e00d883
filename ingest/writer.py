"""The writer: drains the Redis ingest stream into the PostgreSQL event store.

Delivery from the stream is at-least-once (an entry is acked only after its events are
committed); the event store's write is idempotent by event id, so the result is exactly once.
While PostgreSQL is down the writer keeps retrying the same entries with backoff and reads
nothing new; ingest keeps appending to the stream, which is the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from ingest.errors import StoreUnavailable
from ingest.retry import WRITER_BACKOFF, Backoff
from ingest.stores.base import EventStore
from ingest.stores.redis_log import Entry, RedisIngestLog

log = logging.getLogger(__name__)

_CLAIM_EVERY_S = 10.0
_ABANDONED_AFTER_MS = 30_000


@dataclass
class WriterStats:
    events_written: int = 0
    events_deduplicated: int = 0
    entries_acked: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    store_up: bool = True


class StreamWriter:
    def __init__(
        self,
        stream: RedisIngestLog,
        store: EventStore,
        consumer: str,
        *,
        read_count: int,
        block_ms: int,
        backoff: Backoff = WRITER_BACKOFF,
        abandoned_after_ms: int = _ABANDONED_AFTER_MS,
    ) -> None:
        self._stream = stream
        self._store = store
        self._consumer = consumer
        self._read_count = read_count
        self._block_ms = block_ms
        self._backoff = backoff
        self._abandoned_after_ms = abandoned_after_ms
        self._last_claim = 0.0
        self.stats = WriterStats()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.cycle()
            except StoreUnavailable as exc:
                self._failed(exc)
                delay = self._backoff.delay(self.stats.consecutive_failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def cycle(self) -> int:
        """Write one batch of entries; returns how many events it handled (0 if idle)."""
        await self._stream.ensure_group()
        entries = await self._next_entries()
        if not entries:
            return 0
        events = [e for entry in entries for e in entry.events]
        stored = await self._store.write(events)
        await self._stream.ack([entry.entry_id for entry in entries])
        self.stats.events_written += stored
        self.stats.events_deduplicated += len(events) - stored
        self.stats.entries_acked += len(entries)
        self.stats.consecutive_failures = 0
        self.stats.store_up = True
        return len(events)

    async def _next_entries(self) -> list[Entry]:
        # Unacked entries of our own come first: they are what a failed write left behind.
        entries = await self._stream.read(
            self._consumer, self._read_count, self._block_ms, own_pending=True
        )
        if not entries and time.monotonic() - self._last_claim > _CLAIM_EVERY_S:
            self._last_claim = time.monotonic()
            entries = await self._stream.claim_abandoned(
                self._consumer, self._abandoned_after_ms, self._read_count
            )
        if not entries:
            entries = await self._stream.read(
                self._consumer, self._read_count, self._block_ms, own_pending=False
            )
        return entries

    def _failed(self, exc: StoreUnavailable) -> None:
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = str(exc)
        self.stats.store_up = exc.store != "postgres"
        log.warning(
            "writer cannot write yet; events stay buffered in the stream",
            extra={"store": exc.store, "failures": self.stats.consecutive_failures},
        )
