-- Production store. Hot state (sessions, counters, dedupe window, the ingest buffer) is in Redis.

CREATE TABLE shops (
    shop_id text PRIMARY KEY,
    ingest_key text NOT NULL UNIQUE,
    previous_key text,
    previous_key_expires_at timestamptz,
    require_consent boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL
);

-- Append-only. Partitioned by the time Nova received an event: the server's clock decides the
-- layout, so a shopper's wrong clock cannot send rows to a partition that does not exist.
-- Monthly partitions are created ahead of use by the writer (ingest/stores/postgres.py).
CREATE TABLE events (
    shop_id text NOT NULL,
    event_id text NOT NULL,
    name text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    client_id text NOT NULL,
    customer_id text,
    privacy_state text NOT NULL,
    product_id text,
    variant_id text,
    quantity integer,
    order_id text,
    ranking_id text,
    device text,
    country text,
    payload jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (received_at);
CREATE INDEX events_shop_time ON events (shop_id, occurred_at);
CREATE INDEX events_shop_client ON events (shop_id, client_id);

-- One row per stored event. A unique index on a partitioned table must contain the partition
-- key, which would let the same event id land twice in different months; this table is the
-- global guarantee that an event id is stored once.
CREATE TABLE event_ids (
    shop_id text NOT NULL,
    event_id text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, event_id)
);

CREATE TABLE identities (
    shop_id text NOT NULL,
    client_id text NOT NULL,
    customer_id text NOT NULL,
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, client_id, customer_id)
);

CREATE TABLE products (
    shop_id text NOT NULL,
    product_id text NOT NULL,
    status text NOT NULL,
    updated_at timestamptz,
    doc jsonb NOT NULL,
    PRIMARY KEY (shop_id, product_id)
);

CREATE TABLE variants (
    shop_id text NOT NULL,
    variant_id text NOT NULL,
    product_id text NOT NULL,
    PRIMARY KEY (shop_id, variant_id)
);
CREATE INDEX variants_product ON variants (shop_id, product_id);
