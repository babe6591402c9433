-- A row the broker refuses for good (not authorised for its topic, too large, an invalid
-- topic name) is set aside here instead of being retried at the head of the queue for
-- ever while every row behind it waits (#18). It is never deleted and never sent again on
-- its own: the relay skips it, counts it (redline_outbox_quarantined_events) and goes on.
-- Release it, once the cause is fixed, with
--   UPDATE <schema>.outbox SET quarantined_at = NULL WHERE position = ...;
-- (PostgresOutbox.release): it then goes out at its place in the order.
ALTER TABLE {schema}.outbox
    ADD COLUMN quarantined_at    timestamptz,
    ADD COLUMN quarantine_reason text;

-- The relay's read walks this index in order and stops at its limit: it must not step
-- over the quarantined rows each time.
DROP INDEX {schema}.outbox_pending;
CREATE INDEX outbox_pending ON {schema}.outbox (position)
    WHERE sent_at IS NULL AND quarantined_at IS NULL;
CREATE INDEX outbox_quarantined ON {schema}.outbox (position)
    WHERE quarantined_at IS NOT NULL;
