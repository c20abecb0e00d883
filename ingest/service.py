"""The ingest use case, free of HTTP and of Ray: one batch of pixel events in, an IngestResult out.

Order of work for a batch (docs/architecture.md): authenticate the shop, check the size and the
rate limit, validate and normalise each event on its own (one bad event never sinks the batch),
work out the visitor's privacy state, then hand the events to the stores that state allows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from pydantic import ValidationError

from config.settings import Settings
from ingest import normalise as norm
from ingest import popularity
from ingest.consent import Consent, PrivacyState, privacy_state
from ingest.errors import (
    InvalidEvent,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
)
from ingest.events import KNOWN_EVENTS, PIXEL_EVENT
from ingest.records import StoredEvent
from ingest.shops import ShopDirectory
from ingest.stores.base import Stores

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str  # bounded vocabulary, used as a metric tag
    reason: str  # for the client


@dataclass
class IngestResult:
    accepted: int = 0
    duplicate: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    privacy_state: PrivacyState | None = None
    promoted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "promoted": self.promoted,
            "rejected": len(self.rejections),
            "errors": [{"index": r.index, "reason": r.reason} for r in self.rejections],
            "privacy_state": self.privacy_state.value if self.privacy_state else None,
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


class IngestService:
    def __init__(
        self, settings: Settings, stores: Stores, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._settings = settings
        self._stores = stores
        self._shops = ShopDirectory(stores.shops, settings.shop_cache_ttl_s)
        self._clock = clock

    async def ingest(self, body: Any, key: str | None = None) -> IngestResult:
        """`body` is the decoded JSON of POST /v1/events; `key` came from a header or query."""
        if not isinstance(body, dict):
            raise InvalidRequest("body must be a JSON object with shop and events")
        shop_domain, raw_events = body.get("shop"), body.get("events")
        if not isinstance(shop_domain, str) or not isinstance(raw_events, list):
            raise InvalidRequest('body needs "shop" (string) and "events" (array)')
        now = self._clock()
        body_key = body.get("key")
        shop = await self._shops.authenticate(
            shop_domain, key or (body_key if isinstance(body_key, str) else None), now
        )
        if len(raw_events) > self._settings.max_batch_events:
            raise PayloadTooLarge(
                f"{len(raw_events)} events in one batch; the limit is "
                f"{self._settings.max_batch_events}"
            )
        consent, customer_id = _batch_identity(body)
        retry_after = await self._stores.rate_limiter.take(
            shop.shop_id, max(len(raw_events), 1), self._settings.rate_limit_events_per_s, now
        )
        if retry_after is not None:
            raise RateLimited(retry_after)

        result = IngestResult()
        events = self._validate(shop.shop_id, raw_events, now, result)
        state = privacy_state(consent, customer_id, require_consent=shop.require_consent)
        result.privacy_state = state
        events.sort(key=lambda e: e.client_id)
        for client_id, group in groupby(events, key=lambda e: e.client_id):
            stamped = [_stamp(e, state, customer_id) for e in group]
            fresh = await self._admit(shop.shop_id, client_id, stamped, state, result)
            result.accepted += len(fresh)
        return result

    def _validate(
        self, shop_id: str, raw_events: Sequence[Any], now: datetime, result: IngestResult
    ) -> list[StoredEvent]:
        oldest = now - timedelta(seconds=self._settings.max_event_age_s)
        newest = now + timedelta(seconds=self._settings.max_clock_skew_s)
        seen: set[str] = set()
        out: list[StoredEvent] = []
        for index, raw in enumerate(raw_events):
            if not isinstance(raw, dict):
                result.rejections.append(Rejection(index, "not_object", "event must be an object"))
                continue
            try:
                event = PIXEL_EVENT.validate_python(raw)
                stored = norm.normalise(shop_id, event)
            except ValidationError as exc:
                result.rejections.append(Rejection(index, "invalid", _describe(exc)))
                continue
            except InvalidEvent as exc:
                result.rejections.append(Rejection(index, "bad_id", str(exc)))
                continue
            if stored.occurred_at < oldest:
                result.rejections.append(
                    Rejection(index, "too_old", "timestamp is older than the accepted age")
                )
            elif stored.occurred_at > newest:
                result.rejections.append(
                    Rejection(index, "in_future", "timestamp is too far in the future")
                )
            elif stored.event_id in seen:
                result.duplicate += 1
            else:
                seen.add(stored.event_id)
                out.append(stored)
        return out

    async def _admit(
        self,
        shop_id: str,
        client_id: str,
        events: list[StoredEvent],
        state: PrivacyState,
        result: IngestResult,
    ) -> list[StoredEvent]:
        stores, s = self._stores, self._settings
        if state.persists_events:
            # Consent has arrived: what the visitor did while pending becomes theirs to keep.
            # Marked before the held events are read, in one step, so a pending batch in
            # flight either sees the consent or is among the events read.
            held = await stores.visitors.consent(
                shop_id, client_id, state.value, ttl_s=s.session_ttl_s
            )
            promoted = [_stamp(e, state, events[0].customer_id if events else None) for e in held]
            duplicates = await stores.admission.admit(
                shop_id, events, persist=True, promoted=promoted
            )
            if promoted:
                await stores.visitors.drop_pending(shop_id, client_id)
                result.promoted += len(promoted)
        elif state is PrivacyState.PENDING:
            # Held before the ids are claimed: holding is idempotent, so a failure in between
            # leaves a retry able to finish the job rather than seeing "duplicates".
            if not await stores.visitors.hold_pending(
                shop_id, client_id, events, ttl_s=s.pending_ttl_s
            ):
                # Built before the visitor consented, delivered after (a retried or overlapping
                # batch): kept as it would have been had it come first, and counted as promoted,
                # since accepted in the pending state would say the events were only held.
                late = [_stamp(e, PrivacyState.GUEST, None) for e in events]
                stored = await self._admit(shop_id, client_id, late, PrivacyState.GUEST, result)
                result.promoted += len(stored)
                return []
            duplicates = await stores.admission.admit(shop_id, events, persist=False)
        else:
            duplicates = await stores.admission.admit(shop_id, events, persist=False)
            await stores.visitors.forget(shop_id, client_id)
        result.duplicate += len(duplicates)
        fresh = [e for e in events if e.event_id not in duplicates]
        await self._update_hot_state(shop_id, client_id, fresh, state)
        return fresh

    async def _update_hot_state(
        self, shop_id: str, client_id: str, fresh: list[StoredEvent], state: PrivacyState
    ) -> None:
        """Session state and counters are derived data: the events are already durable, so a
        failure here is logged and counted, not turned into an error the client would retry."""
        stores, s = self._stores, self._settings
        try:
            if state.keeps_session and fresh:
                ttl = s.pending_ttl_s if state is PrivacyState.PENDING else s.session_ttl_s
                await stores.visitors.record(
                    shop_id, client_id, fresh, state=state.value, ttl_s=ttl
                )
            customer = next((e.customer_id for e in fresh if e.customer_id), None)
            if state.persists_events and customer:
                # The customer's own state follows them across devices and sessions.
                await stores.visitors.record(
                    shop_id, customer_key(customer), fresh, state=state.value, ttl_s=s.session_ttl_s
                )
            counted = popularity.hits(fresh)
            if counted:
                await stores.popularity.add(shop_id, counted)
        except StoreUnavailable:
            log.warning("hot state update failed", extra={"shop": shop_id}, exc_info=True)


def customer_key(customer_id: str) -> str:
    """The visitor-state key of a logged-in customer (client ids are Shopify's UUIDs, so the
    prefix cannot collide with one)."""
    return f"customer:{customer_id}"


def _batch_identity(body: dict[str, Any]) -> tuple[Consent | None, str | None]:
    raw_consent = body.get("consent")
    try:
        consent = Consent.model_validate(raw_consent) if raw_consent is not None else None
    except ValidationError as exc:
        raise InvalidRequest(f"consent: {_describe(exc)}") from None
    raw_customer = body.get("customerId", body.get("customer_id"))
    if raw_customer in (None, ""):
        return consent, None
    try:
        return consent, norm.customer_id(raw_customer)
    except ValueError as exc:
        raise InvalidRequest(f"customerId: {exc}") from None


def _stamp(event: StoredEvent, state: PrivacyState, customer_id: str | None) -> StoredEvent:
    """The visitor's state and identity, as of this batch, go onto each event."""
    customer = event.customer_id or customer_id
    if state.persists_events and customer:
        return event.with_state(PrivacyState.AUTHENTICATED.value, customer)
    return event.with_state(state.value, customer if state.persists_events else None)


def _describe(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        # Drop the union tag pydantic puts first in the path: the client knows its event name.
        loc = [str(p) for p in err["loc"]]
        if loc and (loc[0] in KNOWN_EVENTS or loc[0] == "generic"):
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'event'}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
