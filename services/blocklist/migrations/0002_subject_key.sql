-- The subject key the builder's hashes were made under: hashes under another key can
-- never be looked up, so a builder with a different key refuses to start.
CREATE TABLE {schema}.subject_key (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    key_id      text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
