-- The feedback tracker's own outbox, in its own schema ({schema}, normally `feedback`),
-- relayed by the tracker process under its own identity (#18). Its response.overdue
-- notices and dead letters went through the registry's outbox before, whose relay may
-- write only the violation stream: under the documented ACLs the first of them stalled
-- the registry's relay for ever. The shape is the departments' outbox as of their
-- migration 0006 (quarantine columns included); the relay runs in the process that
-- writes it and is woken there, so there is no NOTIFY trigger.
CREATE TABLE {schema}.outbox (
    position           bigserial   PRIMARY KEY,
    event_id           text        NOT NULL UNIQUE,
    event_type         text        NOT NULL,
    topic              text        NOT NULL,
    key                text        NOT NULL,
    value              bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    sent_at            timestamptz,
    send_count         integer     NOT NULL DEFAULT 0,
    quarantined_at     timestamptz,
    quarantine_reason  text
);
CREATE INDEX outbox_pending ON {schema}.outbox (position)
    WHERE sent_at IS NULL AND quarantined_at IS NULL;
CREATE INDEX outbox_quarantined ON {schema}.outbox (position)
    WHERE quarantined_at IS NOT NULL;

CREATE TABLE {schema}.relay_state (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id    text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The tracker's rows the registry's outbox still holds (every row there not bound for the
-- violation stream is the tracker's) move here, in their order, so they go out under the
-- tracker's identity: a row the registry's relay quarantined for want of authorisation is
-- queued again (its reason stays as history). A database whose registry schema is not
-- migrated yet has none.
DO $$
BEGIN
    IF to_regclass('public.outbox') IS NOT NULL THEN
        INSERT INTO {schema}.outbox (event_id, event_type, topic, key, value, created_at,
                                     sent_at, send_count, quarantine_reason)
        SELECT event_id, event_type, topic, key, value, created_at, sent_at, send_count,
               quarantine_reason
        FROM public.outbox WHERE topic <> 'redline.violations.v1' ORDER BY position
        ON CONFLICT (event_id) DO NOTHING;
        DELETE FROM public.outbox WHERE topic <> 'redline.violations.v1';
    END IF;
END $$;
