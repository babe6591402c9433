-- One department's own tables, in its own schema (in production, its own database).
-- {schema} is the department's schema, e.g. dept_power_supply.

-- What the department knows of each case: who the subject is, from case.filed.
CREATE TABLE {schema}.cases (
    case_id       text        PRIMARY KEY,
    township      text        NOT NULL,
    subject_kind  text        NOT NULL,
    subject_id    text        NOT NULL,
    subject_name  text        NOT NULL,
    filed_event   text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per measure and case: applied, then lifted. A subject is blocked for a
-- measure while any of its cases has an unlifted row.
CREATE TABLE {schema}.blocks (
    measure          text        NOT NULL,
    case_id          text        NOT NULL REFERENCES {schema}.cases (case_id),
    subject_kind     text        NOT NULL,
    subject_id       text        NOT NULL,
    subject_name     text        NOT NULL,
    legal_basis      text        NOT NULL,
    applied_at       timestamptz NOT NULL,
    applied_by       text        NOT NULL,
    lifted_at        timestamptz,
    lift_reason      text,
    lifted_by        text,
    PRIMARY KEY (measure, case_id)
);
CREATE INDEX blocks_active_by_subject ON {schema}.blocks (subject_id, measure)
    WHERE lifted_at IS NULL;

-- Every consumed event id, written in the same transaction as its effect.
-- include: consumer_tracking

-- Acknowledgements and dead letters waiting to be published.
CREATE TABLE {schema}.outbox (
    position     bigserial   PRIMARY KEY,
    event_id     text        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    value        bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    send_count   integer     NOT NULL DEFAULT 0
);
-- include: outbox_relay
