-- Consumed-event tracking shared by every idempotent consumer: the event id is
-- recorded in the same transaction as the effect, so a redelivery changes nothing.
CREATE TABLE consumed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    consumed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
