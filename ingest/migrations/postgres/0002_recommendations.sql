-- Catalog details, merchandising and derived statistics for the recommendations API.

ALTER TABLE shops ADD COLUMN currency text NOT NULL DEFAULT 'USD';
ALTER TABLE shops ADD COLUMN uninstalled_at timestamptz;

ALTER TABLE variants ADD COLUMN inventory_item_id text;
CREATE INDEX variants_inventory_item ON variants (shop_id, inventory_item_id);

CREATE TABLE collections (
    shop_id text NOT NULL,
    collection_id text NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (shop_id, collection_id)
);

-- Stock per inventory item and location, from inventory_levels/update webhooks.
CREATE TABLE inventory_levels (
    shop_id text NOT NULL,
    inventory_item_id text NOT NULL,
    location_id text NOT NULL,
    available integer NOT NULL,
    PRIMARY KEY (shop_id, inventory_item_id, location_id)
);

-- X-Shopify-Webhook-Id of every delivery handled, so a retry has no second effect.
CREATE TABLE webhook_deliveries (
    shop_id text NOT NULL,
    webhook_id text NOT NULL,
    topic text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, webhook_id)
);

-- Change counters that serving replicas poll to know what to reload.
CREATE TABLE shop_versions (
    shop_id text NOT NULL,
    kind text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (shop_id, kind)
);

CREATE TABLE rule_sets (
    shop_id text NOT NULL,
    version bigint NOT NULL,
    doc jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, version)
);

CREATE TABLE experiments (
    shop_id text NOT NULL,
    experiment_id text NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (shop_id, experiment_id)
);

-- Statistics computed from events (co-occurrence neighbour tables), one document per kind.
CREATE TABLE stats_tables (
    shop_id text NOT NULL,
    kind text NOT NULL,
    computed_at timestamptz NOT NULL,
    doc bytea NOT NULL,
    PRIMARY KEY (shop_id, kind)
);
