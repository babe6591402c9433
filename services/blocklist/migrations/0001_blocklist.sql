-- The blocklist builder's tables, in its own schema ({schema}, normally `blocklist`).
-- Subjects are kept only as keyed hashes and masked names: the builder never needs the ID.

CREATE TABLE {schema}.cases (
    case_id       text        PRIMARY KEY,
    subject_hash  text        NOT NULL,
    subject_kind  text        NOT NULL,
    masked_name   text        NOT NULL,
    filed_event   text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per measure and case; a subject is on a measure's list while any row of its
-- cases is unlifted.
CREATE TABLE {schema}.blocks (
    measure       text        NOT NULL,
    case_id       text        NOT NULL REFERENCES {schema}.cases (case_id),
    subject_hash  text        NOT NULL,
    department    text        NOT NULL,
    legal_basis   text        NOT NULL,
    since         timestamptz NOT NULL,
    applied_by    text        NOT NULL,
    lifted_at     timestamptz,
    lifted_by     text,
    PRIMARY KEY (measure, case_id)
);
CREATE INDEX blocks_active_by_subject ON {schema}.blocks (subject_hash, measure)
    WHERE lifted_at IS NULL;

-- include: consumer_tracking

-- Entries, tombstones (value NULL) and dead letters waiting to be published.
CREATE TABLE {schema}.outbox (
    position     bigserial   PRIMARY KEY,
    event_id     text        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    value        bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    send_count   integer     NOT NULL DEFAULT 0
);
-- include: outbox_relay
