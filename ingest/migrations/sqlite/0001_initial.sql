-- Embedded store: the same tables as PostgreSQL, plus the hot state Redis keeps in production.
-- Timestamps are ISO 8601 UTC text (they sort as text); expiry times are Unix seconds.

CREATE TABLE shops (
    shop_id TEXT PRIMARY KEY,
    ingest_key TEXT NOT NULL UNIQUE,
    previous_key TEXT,
    previous_key_expires_at TEXT,
    require_consent INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE events (
    shop_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    client_id TEXT NOT NULL,
    customer_id TEXT,
    privacy_state TEXT NOT NULL,
    product_id TEXT,
    variant_id TEXT,
    quantity INTEGER,
    order_id TEXT,
    ranking_id TEXT,
    device TEXT,
    country TEXT,
    payload TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (shop_id, event_id)
);
CREATE INDEX events_shop_time ON events (shop_id, occurred_at);
CREATE INDEX events_shop_client ON events (shop_id, client_id);

-- Every event id ever admitted (stored, pending or opted-out), for the duplicate count.
CREATE TABLE seen_events (
    shop_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (shop_id, event_id)
);
CREATE INDEX seen_events_expiry ON seen_events (expires_at);

CREATE TABLE identities (
    shop_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (shop_id, client_id, customer_id)
);

CREATE TABLE products (
    shop_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (shop_id, product_id)
);

CREATE TABLE variants (
    shop_id TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    PRIMARY KEY (shop_id, variant_id)
);
CREATE INDEX variants_product ON variants (shop_id, product_id);

CREATE TABLE visitors (
    shop_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    state TEXT NOT NULL,
    customer_id TEXT,
    last_seen TEXT,
    recent TEXT NOT NULL DEFAULT '[]',
    cart TEXT NOT NULL DEFAULT '[]',
    expires_at REAL NOT NULL,
    PRIMARY KEY (shop_id, client_id)
);
CREATE INDEX visitors_expiry ON visitors (expires_at);

CREATE TABLE pending_events (
    shop_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (shop_id, client_id, event_id)
);
CREATE INDEX pending_events_expiry ON pending_events (expires_at);

CREATE TABLE popularity (
    shop_id TEXT NOT NULL,
    signal TEXT NOT NULL,
    span TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (shop_id, signal, span, epoch, product_id)
);
