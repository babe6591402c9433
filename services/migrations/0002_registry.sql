-- The case registry, its outbox and idempotency keys. A case row, its records and its
-- outgoing events are always written in one transaction.
CREATE SEQUENCE case_number_seq;
CREATE SEQUENCE clue_number_seq;

CREATE TABLE clues (
    clue_id      text        PRIMARY KEY,
    source       text        NOT NULL,
    township     text        NOT NULL,
    location     text        NOT NULL,
    description  text        NOT NULL,
    reported_on  date        NOT NULL,
    case_id      text        UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cases (
    case_id                     text        PRIMARY KEY,
    township                    text        NOT NULL,
    status                      text        NOT NULL,
    subject_kind                text        NOT NULL,
    subject_id                  text        NOT NULL,
    subject_name                text        NOT NULL,
    parcels                     jsonb       NOT NULL,
    basic_farmland_mu           numeric     NOT NULL,
    cultivated_mu               numeric     NOT NULL,
    violation_kind              text        NOT NULL,
    source                      text        NOT NULL,
    found_on                    date        NOT NULL,
    clue_id                     text        REFERENCES clues (clue_id),
    accountability_started_at   timestamptz,
    filed_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_by_township_status ON cases (township, status, case_id);
CREATE INDEX cases_by_status ON cases (status, case_id);
CREATE INDEX cases_by_subject ON cases (subject_id);

-- Every step recorded on a case, in order, with the event that announced it.
CREATE TABLE case_records (
    case_id      text        NOT NULL REFERENCES cases (case_id),
    seq          integer     NOT NULL,
    step         text        NOT NULL,
    event_id     text        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    data         jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);

-- Signed events waiting to be published; `position` is the publication order.
CREATE TABLE outbox (
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
CREATE INDEX outbox_pending ON outbox (position) WHERE sent_at IS NULL;

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('redline_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_wakes_relay AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- A retried POST with the same key returns the first answer and writes nothing new.
CREATE TABLE idempotency_keys (
    key           text        PRIMARY KEY,
    operation     text        NOT NULL,
    request_hash  text        NOT NULL,
    status_code   integer     NOT NULL,
    response      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The relay remembers which broker cluster it published to: a different cluster id means
-- a broker that lost its data (or a new one), and everything is published again.
CREATE TABLE relay_state (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id    text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
