-- Township accountability (seed §四(三), §四(五)): warning talks and their rectification
-- deadlines, praise and criticism, the one-vote veto, and the quarterly responsibility-target
-- reports. Commands share the registry's idempotency_keys table: the answer under a key is
-- saved in the same transaction as the record it answers for.

CREATE SEQUENCE township_talk_seq;
CREATE SEQUENCE township_notice_seq;

CREATE TABLE township_talks (
    talk_id               text        PRIMARY KEY,
    township              text        NOT NULL,
    reason                text        NOT NULL,
    cases                 jsonb       NOT NULL DEFAULT '[]',
    status                text        NOT NULL
        CHECK (status IN ('requested', 'approved', 'declined', 'rectified')),
    requested_by          text        NOT NULL,
    requested_at          timestamptz NOT NULL,
    decided_by            text,
    decided_at            timestamptz,
    talk_on               date,
    rectify_by            date,
    decision_reason       text,
    rectified_on          date,
    rectification_summary text,
    rectified_by          text,
    CHECK ((status IN ('approved', 'rectified')) = (rectify_by IS NOT NULL)),
    CHECK ((status = 'rectified') = (rectified_on IS NOT NULL))
);
CREATE INDEX township_talks_by_township ON township_talks (township, requested_at);
CREATE INDEX township_talks_by_deadline ON township_talks (rectify_by);

CREATE TABLE township_notices (
    notice_id    text        PRIMARY KEY,
    township     text        NOT NULL,
    year         integer     NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('praise', 'criticism')),
    text         text        NOT NULL,
    recorded_by  text        NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX township_notices_by_year ON township_notices (year, township);

-- One veto per township and year: a second is refused, not stacked.
CREATE TABLE township_vetoes (
    township     text        NOT NULL,
    year         integer     NOT NULL,
    reason       text        NOT NULL,
    recorded_by  text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (township, year)
);

CREATE TABLE township_quarter_reports (
    township      text        NOT NULL,
    quarter       text        NOT NULL CHECK (quarter ~ '^[0-9]{4}Q[1-4]$'),
    figures       jsonb       NOT NULL,
    status        text        NOT NULL CHECK (status IN ('draft', 'submitted', 'received')),
    entered_by    text        NOT NULL,
    entered_at    timestamptz NOT NULL,
    submitted_by  text,
    submitted_at  timestamptz,
    received_by   text,
    received_at   timestamptz,
    PRIMARY KEY (township, quarter)
);
CREATE INDEX township_quarter_reports_by_quarter ON township_quarter_reports (quarter);
