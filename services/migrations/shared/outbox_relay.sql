CREATE INDEX outbox_pending ON {schema}.outbox (position) WHERE sent_at IS NULL;

CREATE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_wakes_relay AFTER INSERT ON {schema}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify();

CREATE TABLE {schema}.relay_state (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id    text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
