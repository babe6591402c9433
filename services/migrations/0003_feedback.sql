-- The feedback tracker (发起-响应-反馈): per case, department and measure, what is
-- required (apply or lift), by when, and when it was done. A row may be created by the
-- acknowledgement before the requirement when the two topics are read out of step.
CREATE TABLE responses (
    case_id      text        NOT NULL,
    department   text        NOT NULL,
    measure      text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('apply', 'lift')),
    required_at  timestamptz,
    due_at       timestamptz,
    required_by  text,
    done_at      timestamptz,
    done_by      text,
    reference    text,
    failed_at    timestamptz,
    error        text,
    overdue_at   timestamptz,
    PRIMARY KEY (case_id, department, measure, action)
);
CREATE INDEX responses_waiting ON responses (due_at)
    WHERE done_at IS NULL AND overdue_at IS NULL;
CREATE INDEX responses_by_department ON responses (department, required_at);
