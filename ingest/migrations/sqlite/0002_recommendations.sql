-- Catalog details, merchandising and derived statistics for the recommendations API.

ALTER TABLE shops ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE shops ADD COLUMN uninstalled_at TEXT;

ALTER TABLE variants ADD COLUMN inventory_item_id TEXT;
CREATE INDEX variants_inventory_item ON variants (shop_id, inventory_item_id);

CREATE TABLE collections (
    shop_id TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (shop_id, collection_id)
);

-- Stock per inventory item and location, from inventory_levels/update webhooks.
CREATE TABLE inventory_levels (
    shop_id TEXT NOT NULL,
    inventory_item_id TEXT NOT NULL,
    location_id TEXT NOT NULL,
    available INTEGER NOT NULL,
    PRIMARY KEY (shop_id, inventory_item_id, location_id)
);

-- X-Shopify-Webhook-Id of every delivery handled, so a retry has no second effect.
CREATE TABLE webhook_deliveries (
    shop_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (shop_id, webhook_id)
);

-- Change counters that serving replicas poll to know what to reload.
CREATE TABLE shop_versions (
    shop_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (shop_id, kind)
);

CREATE TABLE rule_sets (
    shop_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (shop_id, version)
);

CREATE TABLE experiments (
    shop_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (shop_id, experiment_id)
);

-- Statistics computed from events (co-occurrence neighbour tables), one document per kind.
CREATE TABLE stats_tables (
    shop_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    computed_at TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (shop_id, kind)
);
