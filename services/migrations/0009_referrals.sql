-- Referrals (移送) as workflows (issue #17): a case (or, for an audit's clue, a township)
-- handed from one body to another, accepted under the receiver's own reference number or
-- refused with a reason, then answered with an outcome. Each step is also a row of the
-- case's records and an entry of the audit log, written in the same transaction.
CREATE SEQUENCE referral_number_seq;

CREATE TABLE referrals (
    referral_id      text        PRIMARY KEY,
    kind             text        NOT NULL,
    case_id          text        REFERENCES cases (case_id),
    township         text        NOT NULL,
    sent_by          text        NOT NULL,
    sent_by_officer  text        NOT NULL,
    to_body          text        NOT NULL,
    automatic        boolean     NOT NULL,
    reason           text        NOT NULL,
    file_summary     text        NOT NULL,
    sent_at          timestamptz NOT NULL,
    answer_due_at    timestamptz NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('sent', 'accepted', 'refused', 'answered')),
    answered_at      timestamptz,
    answered_by      text,
    reference        text,
    refusal_reason   text,
    outcome_due_at   timestamptz,
    outcome          text,
    outcome_on       date,
    outcome_note     text,
    outcome_at       timestamptz,
    outcome_by       text,
    CHECK (status <> 'accepted' OR (reference IS NOT NULL AND outcome_due_at IS NOT NULL)),
    CHECK (status <> 'refused' OR refusal_reason IS NOT NULL),
    CHECK (status <> 'answered' OR outcome IS NOT NULL)
);
-- A receiver's list of what is waiting for it (and the overdue among it).
CREATE INDEX referrals_by_receiver ON referrals (to_body, status, referral_id);
CREATE INDEX referrals_by_sender ON referrals (sent_by, referral_id);
CREATE INDEX referrals_by_case ON referrals (case_id);
-- One unanswered referral of a kind per case (the handler refuses a second, under the
-- case's lock; this keeps it so whatever writes).
CREATE UNIQUE INDEX referrals_one_pending ON referrals (case_id, kind)
    WHERE case_id IS NOT NULL AND status IN ('sent', 'accepted');

-- Who reported a clue (name, role, body or township), from the token; NULL for clues
-- reported before, or from the command line.
ALTER TABLE clues ADD COLUMN reported_by jsonb;
