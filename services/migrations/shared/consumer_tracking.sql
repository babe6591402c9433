CREATE TABLE {schema}.consumed_events (
    event_id     text        PRIMARY KEY,
    event_type   text        NOT NULL,
    consumed_at  timestamptz NOT NULL DEFAULT now()
);
