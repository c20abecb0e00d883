-- The model registry (training/registry.py): every fit, published or rejected, with what it was
-- fitted on and how it scored. Artifacts live outside the database (NOVA_MODEL_STORE); a
-- published row names its directory.
CREATE TABLE models (
    shop_id text NOT NULL,
    kind text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    status text NOT NULL CHECK (status IN ('published', 'rejected')),
    config jsonb NOT NULL,
    data_window jsonb NOT NULL,
    metrics jsonb NOT NULL,
    artifact_uri text,
    created_at timestamptz NOT NULL,
    reason text,
    PRIMARY KEY (shop_id, kind, version),
    CHECK ((status = 'published') = (artifact_uri IS NOT NULL))
);

-- The last version number handed out per shop and kind. Numbers are never reused: not those of
-- rejected fits, nor of fits whose upload failed before their row was written.
CREATE TABLE model_sequences (
    shop_id text NOT NULL,
    kind text NOT NULL,
    last_version integer NOT NULL,
    PRIMARY KEY (shop_id, kind)
);

-- An operator's pin: this published version serves instead of the newest one.
CREATE TABLE model_pins (
    shop_id text NOT NULL,
    kind text NOT NULL,
    version integer NOT NULL,
    PRIMARY KEY (shop_id, kind)
);
