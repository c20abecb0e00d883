"""Embedded backend: every store interface on one SQLite database (no servers needed)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from ingest import popularity as pop
from ingest import session
from ingest.consent import PrivacyState
from ingest.errors import ShopExists
from ingest.records import EVENT_COLUMNS, Shop, StoredEvent, Visitor
from ingest.stores.base import Hit
from ingest.stores.sqlite_db import SQLiteDatabase, transaction

_PURGE_EVERY_S = 60.0
_INSERT_EVENT = (
    f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _event_row(e: StoredEvent, received_at: datetime) -> tuple[object, ...]:
    return (
        e.shop_id,
        e.event_id,
        e.name,
        ts(e.occurred_at),
        ts(e.received_at or received_at),
        e.client_id,
        e.customer_id,
        e.privacy_state,
        e.product_id,
        e.variant_id,
        e.quantity,
        e.order_id,
        e.ranking_id,
        e.device,
        e.country,
        json.dumps(e.payload, separators=(",", ":")),
    )


def insert_events(conn: sqlite3.Connection, events: Sequence[StoredEvent], now: datetime) -> int:
    """Store events not stored before and the identity links they carry; inside a transaction."""
    before = conn.total_changes
    conn.executemany(_INSERT_EVENT, [_event_row(e, now) for e in events])
    stored = conn.total_changes - before
    conn.executemany(
        "INSERT INTO identities VALUES (?, ?, ?, ?) "
        "ON CONFLICT (shop_id, client_id, customer_id) "
        "DO UPDATE SET linked_at = min(linked_at, excluded.linked_at)",
        [
            (e.shop_id, e.client_id, e.customer_id, ts(e.occurred_at))
            for e in events
            if e.customer_id
        ],
    )
    return stored


class SQLiteShops:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def create_shop(self, shop: Shop) -> None:
        def _create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO shops ({_SHOP_COLUMNS}) VALUES ({_MARKS})", _shop_row(shop)
                )
            except sqlite3.IntegrityError:
                raise ShopExists(shop.shop_id) from None

        await self._db.run(_create)

    async def save_shop(self, shop: Shop) -> None:
        await self._db.run(
            lambda c: c.execute(
                f"INSERT OR REPLACE INTO shops ({_SHOP_COLUMNS}) VALUES ({_MARKS})", _shop_row(shop)
            )
        )

    async def get_shop(self, shop_id: str) -> Shop | None:
        row = await self._db.run(
            lambda c: c.execute("SELECT * FROM shops WHERE shop_id = ?", (shop_id,)).fetchone()
        )
        return _shop(row) if row else None

    async def list_shops(self) -> list[Shop]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT * FROM shops ORDER BY shop_id").fetchall()
        )
        return [_shop(r) for r in rows]


_SHOP_COLUMNS = (
    "shop_id, ingest_key, previous_key, previous_key_expires_at, require_consent, created_at, "
    "currency, uninstalled_at"
)
_MARKS = ", ".join("?" for _ in _SHOP_COLUMNS.split(","))


def _shop_row(s: Shop) -> tuple[object, ...]:
    expires = ts(s.previous_key_expires_at) if s.previous_key_expires_at else None
    uninstalled = ts(s.uninstalled_at) if s.uninstalled_at else None
    return (
        s.shop_id,
        s.ingest_key,
        s.previous_key,
        expires,
        int(s.require_consent),
        ts(s.created_at),
        s.currency,
        uninstalled,
    )


def _shop(r: sqlite3.Row) -> Shop:
    return Shop(
        shop_id=r["shop_id"],
        ingest_key=r["ingest_key"],
        previous_key=r["previous_key"],
        previous_key_expires_at=_dt(r["previous_key_expires_at"]),
        require_consent=bool(r["require_consent"]),
        created_at=datetime.fromisoformat(r["created_at"]),
        currency=r["currency"],
        uninstalled_at=_dt(r["uninstalled_at"]),
    )


class SQLiteEvents:
    """Admission and the event store in one: a commit is what makes an event durable here."""

    def __init__(self, db: SQLiteDatabase, dedupe_window_s: int) -> None:
        self._db = db
        self._window_s = dedupe_window_s
        self._last_purge = 0.0

    async def admit(
        self,
        shop_id: str,
        events: Sequence[StoredEvent],
        *,
        persist: bool,
        promoted: Sequence[StoredEvent] = (),
    ) -> set[str]:
        now = datetime.now(UTC)
        now_s = now.timestamp()

        def _admit(conn: sqlite3.Connection) -> set[str]:
            duplicates: set[str] = set()
            with transaction(conn):
                self._maybe_purge(conn, now_s)
                fresh = []
                for e in events:
                    # An expired claim is re-claimed; a live one marks a duplicate.
                    claimed = conn.execute(
                        "INSERT INTO seen_events VALUES (?, ?, ?) "
                        "ON CONFLICT (shop_id, event_id) "
                        "DO UPDATE SET expires_at = excluded.expires_at "
                        "WHERE seen_events.expires_at < ?",
                        (shop_id, e.event_id, now_s + self._window_s, now_s),
                    ).rowcount
                    if claimed:
                        fresh.append(e)
                    else:
                        duplicates.add(e.event_id)
                insert_events(conn, [*(fresh if persist else ()), *promoted], now)
            return duplicates

        return await self._db.run(_admit)

    def _maybe_purge(self, conn: sqlite3.Connection, now_s: float) -> None:
        if now_s - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now_s
        for table in ("seen_events", "visitors", "pending_events"):
            conn.execute(f"DELETE FROM {table} WHERE expires_at < ?", (now_s,))

    async def write(self, events: Sequence[StoredEvent]) -> int:
        now = datetime.now(UTC)

        def _write(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                return insert_events(conn, events, now)

        return await self._db.run(_write)

    async def count(self, shop_id: str, name: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM events WHERE shop_id = ?", [shop_id]
        if name is not None:
            sql, args = sql + " AND name = ?", [*args, name]
        row = await self._db.run(lambda c: c.execute(sql, args).fetchone())
        return int(row[0])

    async def read(self, shop_id: str, *, limit: int = 10_000) -> list[StoredEvent]:
        # customer_id is resolved through identity links: an event from a client id belongs to
        # the customer that client was linked to at or before the event's time.
        cols = ", ".join(f"e.{c}" for c in EVENT_COLUMNS if c != "customer_id")
        sql = (
            f"SELECT {cols}, coalesce(e.customer_id, (SELECT i.customer_id FROM identities i "
            "WHERE i.shop_id = e.shop_id AND i.client_id = e.client_id "
            "AND i.linked_at <= e.occurred_at ORDER BY i.linked_at DESC LIMIT 1)) AS customer_id "
            "FROM events e WHERE e.shop_id = ? ORDER BY e.occurred_at, e.event_id LIMIT ?"
        )
        rows = await self._db.run(lambda c: c.execute(sql, (shop_id, limit)).fetchall())
        return [StoredEvent.from_dict(dict(r)) for r in rows]

    async def erase_visitor(self, shop_id: str, client_id: str) -> int:
        def _erase(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                deleted = conn.execute(
                    "DELETE FROM events WHERE shop_id = ? AND client_id = ?", (shop_id, client_id)
                ).rowcount
                conn.execute(
                    "DELETE FROM identities WHERE shop_id = ? AND client_id = ?",
                    (shop_id, client_id),
                )
            return int(deleted)

        return await self._db.run(_erase)

    async def basket_items(self, shop_id: str, kind: str, since: datetime) -> list[tuple[str, str]]:
        if kind == "purchase":
            sql = (
                "SELECT coalesce(e.order_id, e.event_id), json_extract(item.value, '$.product_id') "
                "FROM events e, json_each(e.payload, '$.items') item WHERE e.shop_id = ? "
                "AND e.name IN ('checkout_completed', 'order_created') AND e.occurred_at >= ? "
                "AND json_extract(item.value, '$.product_id') IS NOT NULL"
            )
            args: tuple[object, ...] = (shop_id, ts(since))
        else:
            sql = (
                "SELECT client_id || ':' || substr(occurred_at, 1, 10), product_id FROM events "
                "WHERE shop_id = ? AND name = ? AND occurred_at >= ? AND product_id IS NOT NULL"
            )
            names = {"view": "product_viewed", "cart": "product_added_to_cart"}
            args = (shop_id, names[kind], ts(since))
        rows = await self._db.run(lambda c: c.execute(sql, args).fetchall())
        return [(r[0], r[1]) for r in rows]

    async def customer_of(self, shop_id: str, client_id: str) -> str | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT customer_id FROM identities WHERE shop_id = ? AND client_id = ? "
                "ORDER BY linked_at DESC LIMIT 1",
                (shop_id, client_id),
            ).fetchone()
        )
        return row[0] if row else None


class SQLiteVisitors:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def record(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, state: str, ttl_s: int
    ) -> None:
        d = session.delta(events)

        def _record(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                _save_visitor(conn, shop_id, client_id, d, state, ttl_s)

        await self._db.run(_record)

    async def get(self, shop_id: str, client_id: str) -> Visitor:
        return await self._db.run(lambda c: _load_visitor(c, shop_id, client_id))

    async def get_many(self, shop_id: str, client_ids: Sequence[str]) -> list[Visitor]:
        return await self._db.run(lambda c: [_load_visitor(c, shop_id, i) for i in client_ids])

    async def hold_pending(
        self, shop_id: str, client_id: str, events: Sequence[StoredEvent], *, ttl_s: int
    ) -> bool:
        expires = time.time() + ttl_s

        def _hold(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                if _load_visitor(conn, shop_id, client_id).privacy_state in _CONSENTED:
                    return False
                conn.executemany(
                    "INSERT OR IGNORE INTO pending_events VALUES (?, ?, ?, ?, ?)",
                    [(shop_id, client_id, e.event_id, e.to_json(), expires) for e in events],
                )
                # Activity keeps the pending session alive, as a sliding TTL does in Redis.
                conn.execute(
                    "UPDATE pending_events SET expires_at = ? WHERE shop_id = ? AND client_id = ?",
                    (expires, shop_id, client_id),
                )
                return True

        return await self._db.run(_hold)

    async def consent(
        self, shop_id: str, client_id: str, state: str, *, ttl_s: int
    ) -> list[StoredEvent]:
        def _consent(conn: sqlite3.Connection) -> list[StoredEvent]:
            with transaction(conn):
                _save_visitor(conn, shop_id, client_id, session.delta([]), state, ttl_s)
                return _held(conn, shop_id, client_id)

        return await self._db.run(_consent)

    async def pending(self, shop_id: str, client_id: str) -> list[StoredEvent]:
        return await self._db.run(lambda c: _held(c, shop_id, client_id))

    async def drop_pending(self, shop_id: str, client_id: str) -> None:
        await self._db.run(
            lambda c: c.execute(
                "DELETE FROM pending_events WHERE shop_id = ? AND client_id = ?",
                (shop_id, client_id),
            )
        )

    async def forget(self, shop_id: str, client_id: str) -> None:
        def _forget(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                for table in ("pending_events", "visitors"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE shop_id = ? AND client_id = ?",
                        (shop_id, client_id),
                    )

        await self._db.run(_forget)


_CONSENTED = (PrivacyState.GUEST.value, PrivacyState.AUTHENTICATED.value)


def _held(conn: sqlite3.Connection, shop_id: str, client_id: str) -> list[StoredEvent]:
    """A visitor's held events, oldest first."""
    rows = conn.execute(
        "SELECT event FROM pending_events WHERE shop_id = ? AND client_id = ? AND expires_at >= ?",
        (shop_id, client_id, time.time()),
    ).fetchall()
    return sorted((StoredEvent.from_json(r[0]) for r in rows), key=lambda e: e.occurred_at)


def _save_visitor(
    conn: sqlite3.Connection,
    shop_id: str,
    client_id: str,
    d: session.SessionDelta,
    state: str,
    ttl_s: int,
) -> None:
    """Fold a change into the visitor's row; inside a transaction."""
    old = _load_visitor(conn, shop_id, client_id)
    expires = time.time() + ttl_s
    if state == PrivacyState.PENDING.value and old.privacy_state in _CONSENTED:
        # A pending batch that finished after its client's consent: the session stays consented.
        state = old.privacy_state
        (kept,) = conn.execute(
            "SELECT expires_at FROM visitors WHERE shop_id = ? AND client_id = ?",
            (shop_id, client_id),
        ).fetchone()
        expires = max(expires, kept)
    new = session.apply(old, d, state)
    conn.execute(
        "INSERT OR REPLACE INTO visitors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            shop_id,
            client_id,
            state,
            new.customer_id,
            ts(new.last_seen) if new.last_seen else None,
            json.dumps(list(new.recent_views)),
            json.dumps(sorted(new.cart)),
            expires,
        ),
    )


def _load_visitor(conn: sqlite3.Connection, shop_id: str, client_id: str) -> Visitor:
    row = conn.execute(
        "SELECT * FROM visitors WHERE shop_id = ? AND client_id = ? AND expires_at >= ?",
        (shop_id, client_id, time.time()),
    ).fetchone()
    if row is None:
        return Visitor(client_id=client_id)
    return Visitor(
        client_id=client_id,
        recent_views=tuple(json.loads(row["recent"])),
        cart=frozenset(json.loads(row["cart"])),
        last_seen=_dt(row["last_seen"]),
        customer_id=row["customer_id"],
        privacy_state=row["state"],
    )


class SQLitePopularity:
    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def add(self, shop_id: str, hits: Sequence[Hit]) -> None:
        increments: dict[tuple[str, str, int, str], float] = defaultdict(float)
        for hit in hits:
            for window, half_life in pop.WINDOWS.items():
                epoch, value = pop.scaled(hit.weight, hit.at.timestamp(), half_life)
                increments[(hit.signal, window, epoch, hit.product_id)] += value

        def _add(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO popularity VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (shop_id, signal, span, epoch, product_id) "
                    "DO UPDATE SET score = score + excluded.score",
                    [(shop_id, *k, v) for k, v in increments.items()],
                )

        await self._db.run(_add)

    async def top(
        self, shop_id: str, signal: str, window: str, k: int, now: datetime
    ) -> list[tuple[str, float]]:
        half_life = pop.WINDOWS[window]
        now_s = now.timestamp()
        current = pop.epoch(now_s, half_life)
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT product_id, epoch, score FROM popularity WHERE shop_id = ? AND signal = ? "
                "AND span = ? AND epoch IN (?, ?)",
                (shop_id, signal, window, current, current - 1),
            ).fetchall()
        )
        totals: dict[str, float] = defaultdict(float)
        for product_id, epoch, score in rows:
            totals[product_id] += pop.decayed(score, epoch, now_s, half_life)
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
